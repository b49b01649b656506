// "My meetings" on the profile page: the signed-in user's own meeting
// history (date, meeting, duration, people), newest first, with "Show
// older meetings" for the next page. The words and paths come from the
// DOM-free lib/admin-format.js.

import { myMeetingsPath, myMeetingRow } from '../lib/admin-format.js';

/**
 * Fills the table body `tbody` with the user's meetings and wires the
 * "Show older meetings" button.
 * @param {HTMLTableSectionElement} tbody
 * @param {HTMLButtonElement} more
 * @param {HTMLElement} status Where "No meetings yet" or an error goes.
 */
export async function mountMyMeetings(tbody, more, status) {
  /** @type {number | null} */
  let before = null;
  const load = async () => {
    more.disabled = true;
    try {
      const resp = await fetch(myMeetingsPath(before), { credentials: 'same-origin' });
      if (!resp.ok) throw new Error(`the server answered ${resp.status}`);
      const page = await resp.json();
      for (const m of page.meetings) tbody.append(row(myMeetingRow(m)));
      before = page.next_before ?? null;
      more.hidden = before == null;
      status.textContent = tbody.rows.length ? '' : 'No meetings yet.';
    } catch (e) {
      status.textContent = `Your meetings could not be loaded: ${/** @type {Error} */ (e).message}`;
    } finally {
      more.disabled = false;
    }
  };
  more.addEventListener('click', () => void load());
  await load();
}

/**
 * @param {{when: string, name: string, href: string, duration: string, people: string}} r
 * @returns {HTMLTableRowElement}
 */
function row(r) {
  const tr = document.createElement('tr');
  const cell = (/** @type {string | Node} */ content) => {
    const td = document.createElement('td');
    td.append(content);
    tr.append(td);
  };
  cell(r.when);
  const a = document.createElement('a');
  a.href = r.href;
  a.textContent = r.name;
  cell(a);
  cell(r.duration);
  cell(r.people);
  return tr;
}
