// The "Sign in with {provider}" button: shown only when the server offers
// single sign-on (`GET /api/me` says `sign_in.sso_provider`) and nobody is
// signed in. The button leads to `/auth/oidc/login`, which sends the
// browser to the provider and brings it back to `returnTo` signed in.

/** Where a sign-in through the provider starts. */
export const SSO_LOGIN_PATH = '/auth/oidc/login';

/**
 * What the button needs to know: the provider's name, if SSO is offered.
 * @typedef {{ enabled: boolean, provider_name?: string, login_url?: string }} SsoInfo
 */

/**
 * Reads the SSO offer from a `GET /api/me` answer; no offer to someone
 * already signed in.
 * @param {any} me
 * @returns {SsoInfo}
 */
export function ssoInfoFromMe(me) {
  const name = me?.sign_in?.sso_provider;
  if (typeof name !== 'string' || !name || me?.user) return { enabled: false };
  return { enabled: true, provider_name: name, login_url: SSO_LOGIN_PATH };
}

/**
 * The button's text, or null when no SSO is offered.
 * @param {SsoInfo | null | undefined} info
 * @returns {string | null}
 */
export function ssoButtonLabel(info) {
  if (!info || !info.enabled || !info.provider_name) return null;
  return `Sign in with ${info.provider_name}`;
}

/**
 * Where the button goes: the login URL with `return_to`, which must be a
 * path on this site (the server refuses anything else, so it is dropped
 * here rather than sent).
 * @param {SsoInfo} info
 * @param {string} returnTo
 * @returns {string}
 */
export function ssoLoginHref(info, returnTo) {
  const base = info.login_url && info.login_url.startsWith('/') && !info.login_url.startsWith('//')
    ? info.login_url
    : SSO_LOGIN_PATH;
  const local = returnTo.startsWith('/') && !returnTo.startsWith('//') && !returnTo.includes('\\');
  return local ? `${base}?return_to=${encodeURIComponent(returnTo)}` : base;
}

/**
 * Asks the server whether SSO is offered (`GET /api/me`).
 * @param {{ fetch?: typeof fetch }} [deps]
 * @returns {Promise<SsoInfo | null>}
 */
export async function fetchSsoInfo(deps = {}) {
  const f = deps.fetch ?? fetch;
  try {
    const resp = await f('/api/me', { headers: { Accept: 'application/json' } });
    if (!resp.ok) return null;
    return ssoInfoFromMe(await resp.json());
  } catch {
    return null;
  }
}

/**
 * Adds the button to `container` when SSO is offered; otherwise leaves the
 * page as it is. A page that already has the `GET /api/me` answer passes it
 * as `me` and saves the request.
 * @param {HTMLElement} container
 * @param {string} [returnTo] where to land once signed in (default: this page)
 * @param {any} [me] the `GET /api/me` answer, if already fetched
 * @returns {Promise<HTMLButtonElement | null>}
 */
export async function mountSsoButton(container, returnTo = location.pathname + location.search, me = undefined) {
  const info = me === undefined ? await fetchSsoInfo() : ssoInfoFromMe(me);
  const label = ssoButtonLabel(info);
  if (!info || !label) return null;
  const button = document.createElement('button');
  button.type = 'button';
  button.className = 'sso-button';
  button.textContent = label;
  const href = ssoLoginHref(info, returnTo);
  button.addEventListener('click', () => location.assign(href));
  container.append(button);
  container.hidden = false;
  return button;
}
