// A real OpenID Connect provider on loopback for tests/oidc_sso.rs:
// panva's oidc-provider (a certified OP implementation) with one
// confidential client, PKCE required, a `groups` claim, two static accounts
// and a plain login page that checks passwords. Not a mock: discovery, JWKS,
// signed ID tokens, the code exchange and RP-initiated logout are the
// library's own.
//
//   node provider.mjs --port 45001 --client-id veche --client-secret S \
//     --redirect-uri http://127.0.0.1:PORT/auth/oidc/callback \
//     --post-logout-redirect-uri http://127.0.0.1:PORT/
//
// Every option may also come from the environment (OIDC_TEST_PORT,
// OIDC_TEST_CLIENT_ID, OIDC_TEST_CLIENT_SECRET, OIDC_TEST_REDIRECT_URI,
// OIDC_TEST_POST_LOGOUT_REDIRECT_URI). Prints `listening on
// http://127.0.0.1:PORT` once it accepts requests.

import http from 'node:http';
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import Provider from 'oidc-provider';

const { values: args } = parseArgs({
  options: {
    port: { type: 'string' },
    'client-id': { type: 'string' },
    'client-secret': { type: 'string' },
    'redirect-uri': { type: 'string' },
    'post-logout-redirect-uri': { type: 'string' },
  },
});
const env = process.env;
const port = Number(args.port ?? env.OIDC_TEST_PORT ?? 0);
const clientId = args['client-id'] ?? env.OIDC_TEST_CLIENT_ID ?? 'veche';
const clientSecret = args['client-secret'] ?? env.OIDC_TEST_CLIENT_SECRET;
const redirectUri = args['redirect-uri'] ?? env.OIDC_TEST_REDIRECT_URI;
const postLogoutUri = args['post-logout-redirect-uri'] ?? env.OIDC_TEST_POST_LOGOUT_REDIRECT_URI;
if (!port || !clientSecret || !redirectUri) {
  console.error('usage: provider.mjs --port P --client-id ID --client-secret S --redirect-uri URI [--post-logout-redirect-uri URI]');
  process.exit(2);
}

/** The accounts, by the email they sign in with. `sub` is stable and not the email. */
const ACCOUNTS = {
  'alice@example.test': { sub: 'u-alice', password: 'alice-password', name: 'Alice Admin', groups: ['veche-admins', 'staff'] },
  'bob@example.test': { sub: 'u-bob', password: 'bob-password', name: 'Bob Builder', groups: [] },
};
const BY_SUB = Object.fromEntries(Object.entries(ACCOUNTS).map(([email, a]) => [a.sub, { email, ...a }]));

const issuer = `http://127.0.0.1:${port}`;
const provider = new Provider(issuer, {
  clients: [{
    client_id: clientId,
    client_secret: clientSecret,
    redirect_uris: [redirectUri],
    post_logout_redirect_uris: postLogoutUri ? [postLogoutUri] : [],
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  pkce: { required: () => true },
  scopes: ['openid', 'email', 'profile', 'groups'],
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name'],
    groups: ['groups'],
  },
  // Put the scopes' claims into the ID token too, as Keycloak does by
  // default, so the relying party needs no userinfo call.
  conformIdTokenClaims: false,
  async findAccount(_ctx, sub) {
    const a = BY_SUB[sub];
    if (!a) return undefined;
    return {
      accountId: sub,
      async claims() {
        return { sub, email: a.email, email_verified: true, name: a.name, groups: a.groups };
      },
    };
  },
  // A first-party client: no consent screen. The grant covers what was asked.
  async loadExistingGrant(ctx) {
    const grantId = ctx.oidc.result?.consent?.grantId
      || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) {
      const existing = await ctx.oidc.provider.Grant.find(grantId);
      if (existing) return existing;
    }
    const grant = new ctx.oidc.provider.Grant({
      clientId: ctx.oidc.client.clientId,
      accountId: ctx.oidc.session.accountId,
    });
    grant.addOIDCScope([...ctx.oidc.requestParamScopes].join(' '));
    await grant.save();
    return grant;
  },
  interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
  features: {
    devInteractions: { enabled: false },
    rpInitiatedLogout: { enabled: true },
  },
  cookies: { keys: [randomBytes(32).toString('hex')] },
});
provider.on('server_error', (_ctx, err) => console.error('provider error:', err));

const escape = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function loginPage(uid, error, email) {
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Example Identity Provider: sign in</title></head>
<body>
<h1>Example Identity Provider</h1>
${error ? `<p role="alert">${escape(error)}</p>` : ''}
<form method="post" action="/interaction/${escape(uid)}/login">
  <label>Email <input name="email" type="email" autocomplete="username" required value="${escape(email ?? '')}"></label>
  <label>Password <input name="password" type="password" autocomplete="current-password" required></label>
  <button type="submit">Sign in</button>
</form>
</body></html>`;
}

async function readForm(req) {
  let body = '';
  for await (const chunk of req) {
    body += chunk;
    if (body.length > 8192) throw new Error('form too large');
  }
  return new URLSearchParams(body);
}

const handleProvider = provider.callback();

const server = http.createServer(async (req, res) => {
  const path = new URL(req.url ?? '/', issuer).pathname;
  const m = path.match(/^\/interaction\/([A-Za-z0-9_-]+)(\/login)?$/);
  if (!m) {
    handleProvider(req, res);
    return;
  }
  try {
    const details = await provider.interactionDetails(req, res);
    if (details.prompt.name !== 'login') {
      // Consent is granted by loadExistingGrant; anything else is a bug here.
      throw new Error(`unexpected prompt ${details.prompt.name}`);
    }
    res.setHeader('content-type', 'text/html; charset=utf-8');
    res.setHeader('cache-control', 'no-store');
    if (req.method === 'GET' && !m[2]) {
      res.end(loginPage(details.uid));
      return;
    }
    if (req.method === 'POST' && m[2]) {
      const form = await readForm(req);
      const email = (form.get('email') ?? '').trim().toLowerCase();
      const account = ACCOUNTS[email];
      if (!account || account.password !== form.get('password')) {
        res.statusCode = 401;
        res.end(loginPage(details.uid, 'Invalid email or password.', email));
        return;
      }
      await provider.interactionFinished(req, res, { login: { accountId: account.sub } }, { mergeWithLastSubmission: false });
      return;
    }
    res.statusCode = 405;
    res.end('method not allowed');
  } catch (err) {
    res.statusCode = 400;
    res.setHeader('content-type', 'text/plain; charset=utf-8');
    res.end(`interaction failed: ${err.message}`);
  }
});

server.listen(port, '127.0.0.1', () => {
  console.log(`listening on ${issuer}`);
});
for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => server.close(() => process.exit(0)));
}
