// The sign-in page: email and password. The single sign-on button, when
// the server has one, is added by its own module into #sso-buttons.

import { signIn, me } from './lib/accounts-api.js';
import { signInProblem, nextPath } from './lib/accounts-rules.js';
import { mountSsoButton } from './ui/sso.js';

/**
 * @param {string} id
 * @returns {any}
 */
const $ = (id) => document.getElementById(id);

/** @param {string | null} text */
function setError(text) {
  const e = $('signin-error');
  e.hidden = !text;
  e.textContent = text ?? '';
}

/** @param {SubmitEvent} e */
async function onSubmit(e) {
  e.preventDefault();
  const email = $('email').value;
  const password = $('password').value;
  const problem = signInProblem(email, password);
  if (problem) {
    setError(problem);
    (email.trim() ? $('password') : $('email')).focus();
    return;
  }
  setError(null);
  const button = $('signin-button');
  button.disabled = true;
  try {
    await signIn(email.trim(), password);
    location.assign(nextPath(location.search));
  } catch (err) {
    setError(/** @type {Error} */ (err).message);
    $('password').select();
    button.disabled = false;
  }
}

$('signin-form').addEventListener('submit', onSubmit);
$('email').focus();
// Already signed in: nothing to do here.
me().then((who) => {
  if (who.user) location.replace(nextPath(location.search));
}, () => {});
// "Sign in with {provider}", back to the same place as a password sign-in.
void mountSsoButton($('sso-buttons'), nextPath(location.search));
