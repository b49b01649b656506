// The account corner of the home page: "Sign in" for an anonymous visitor;
// the user's picture and name, "Profile", "Recordings" and "Sign out" once
// signed in.
// The single sign-on button is added by its own module into
// #sso-buttons.

import { me, signOut } from './lib/accounts-api.js';

/**
 * @param {string} id
 * @returns {any}
 */
const $ = (id) => document.getElementById(id);

/**
 * An element with text.
 * @param {string} tag
 * @param {string} [text]
 * @returns {HTMLElement}
 */
function el(tag, text) {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = text;
  return e;
}

/** @param {import('./lib/accounts-api.js').Me} who */
function render(who) {
  const nav = $('account-nav');
  if (!nav) return;
  const slot = $('account-slot');
  slot.replaceChildren();
  const user = who.user;
  if (!user) {
    const a = /** @type {HTMLAnchorElement} */ (el('a', 'Sign in'));
    a.href = '/signin';
    a.className = 'button-link';
    slot.append(a);
    nav.dataset.state = 'anonymous';
    return;
  }
  if (user.avatar_url) {
    const img = /** @type {HTMLImageElement} */ (el('img'));
    img.src = user.avatar_url;
    img.alt = '';
    img.className = 'avatar';
    slot.append(img);
  }
  const name = el('span', user.display_name);
  name.className = 'who';
  name.title = user.email;
  const profile = /** @type {HTMLAnchorElement} */ (el('a', 'Profile'));
  profile.href = '/profile';
  const recordings = /** @type {HTMLAnchorElement} */ (el('a', 'Recordings'));
  recordings.href = '/recordings';
  const out = /** @type {HTMLButtonElement} */ (el('button', 'Sign out'));
  out.type = 'button';
  out.addEventListener('click', async () => {
    out.disabled = true;
    try {
      const r = /** @type {{logout_url?: string}} */ (await signOut());
      if (r && typeof r.logout_url === 'string' && r.logout_url) {
        location.assign(r.logout_url);
        return;
      }
    } catch {
      // Signed out or not, reloading shows the truth.
    }
    location.reload();
  });
  slot.append(name, profile, recordings, out);
  const sso = $('sso-buttons');
  if (sso) sso.hidden = true;
  nav.dataset.state = 'signed-in';
}

me().then(render, () => {
  // The server could not say who this is: offer to sign in.
  render({ user: null, sign_in: { password: true } });
});
