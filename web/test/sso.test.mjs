// The SSO button's logic (ui/sso.js). Run with `node --test web/test/`.

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { fetchSsoInfo, ssoButtonLabel, ssoInfoFromMe, ssoLoginHref } from '../public/ui/sso.js';
import { fakeFetch } from './fakes.mjs';

describe('SSO button', () => {
  test('is labelled with the provider name only when SSO is enabled', () => {
    assert.equal(ssoButtonLabel({ enabled: true, provider_name: 'Acme SSO', login_url: '/auth/oidc/login' }), 'Sign in with Acme SSO');
    assert.equal(ssoButtonLabel({ enabled: false }), null);
    assert.equal(ssoButtonLabel(null), null);
  });

  test('leads to the login URL with a local return_to, and drops a foreign one', () => {
    const info = { enabled: true, provider_name: 'X', login_url: '/auth/oidc/login' };
    assert.equal(ssoLoginHref(info, '/r/abc?x=1'), '/auth/oidc/login?return_to=%2Fr%2Fabc%3Fx%3D1');
    assert.equal(ssoLoginHref(info, '//evil.example'), '/auth/oidc/login');
    assert.equal(ssoLoginHref(info, 'https://evil.example/'), '/auth/oidc/login');
    assert.equal(ssoLoginHref({ ...info, login_url: '//evil.example' }, '/'), '/auth/oidc/login?return_to=%2F');
  });

  test('is offered when /api/me names a provider and nobody is signed in', () => {
    const offer = { enabled: true, provider_name: 'Acme', login_url: '/auth/oidc/login' };
    assert.deepEqual(ssoInfoFromMe({ user: null, sign_in: { password: true, sso_provider: 'Acme' } }), offer);
    assert.deepEqual(ssoInfoFromMe({ user: { id: 1 }, sign_in: { sso_provider: 'Acme' } }), { enabled: false });
    assert.deepEqual(ssoInfoFromMe({ user: null, sign_in: { password: true } }), { enabled: false });
    assert.deepEqual(ssoInfoFromMe(null), { enabled: false });
  });

  test('fetchSsoInfo reads /api/me and treats failures as no SSO', async () => {
    const f = fakeFetch(() => ({ status: 200, body: { user: null, sign_in: { password: true, sso_provider: 'Acme' } } }));
    assert.deepEqual(await fetchSsoInfo({ fetch: f }), { enabled: true, provider_name: 'Acme', login_url: '/auth/oidc/login' });
    assert.equal(f.calls[0].url, '/api/me');
    const down = fakeFetch(() => ({ status: 503, body: {} }));
    assert.equal(await fetchSsoInfo({ fetch: down }), null);
  });
});
