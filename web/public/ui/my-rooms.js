// "My rooms" on the profile page: the rooms the signed-in user created,
// newest first, each with its cover's thumbnail and title and a link to
// its recordings. The request is in the DOM-free lib/covers.js.

import { myRooms } from '../lib/covers.js';

/**
 * Fills `list` with the user's rooms.
 * @param {HTMLUListElement} list
 * @param {HTMLElement} status Where "No rooms yet" or an error goes.
 */
export async function mountMyRooms(list, status) {
  try {
    const rooms = await myRooms();
    for (const r of rooms) {
      const li = document.createElement('li');
      li.className = 'my-room';
      const url = r.cover?.image_url;
      if (url) {
        const img = document.createElement('img');
        img.className = 'my-room-thumb';
        img.src = url;
        img.alt = r.cover?.title || `Cover of ${r.name}`;
        img.loading = 'lazy';
        li.append(img);
      }
      const text = document.createElement('div');
      const a = document.createElement('a');
      a.href = `/r/${encodeURIComponent(r.slug)}`;
      a.textContent = r.name;
      text.append(a);
      // The room's recordings (the list checks who may see them).
      const recs = document.createElement('a');
      recs.className = 'my-room-recordings';
      recs.href = `/recordings?room=${encodeURIComponent(r.slug)}`;
      recs.textContent = 'Recordings';
      recs.setAttribute('aria-label', `Recordings of ${r.name}`);
      text.append(' ', recs);
      if (r.cover?.title) {
        const t = document.createElement('p');
        t.className = 'muted';
        t.textContent = r.cover.title;
        text.append(t);
      }
      li.append(text);
      list.append(li);
    }
    status.textContent = rooms.length ? '' : 'No rooms yet.';
  } catch (e) {
    status.textContent = `Your rooms could not be loaded: ${/** @type {Error} */ (e).message}`;
  }
}
