// A real OpenID Connect provider (panva/oidc-provider, development interactions) for aireg's SSO tests.
//
//   node tests/oidc/provider.mjs PORT REDIRECT_URI [CLIENT_ID] [CLIENT_SECRET]
//
// Issuer http://127.0.0.1:PORT; one confidential client (client_secret_basic) that must use PKCE (S256);
// accounts in memory below. The login form takes any password (oidc-provider's development-only
// interactions); the consent page has a "Continue" button. Prints "ready <issuer>" once listening.
import Provider from 'oidc-provider';

const [port, redirectUri, clientId = 'aireg', clientSecret = 'aireg-test-secret-0123456789'] =
  process.argv.slice(2);
if (!port || !redirectUri) {
  console.error('usage: node provider.mjs PORT REDIRECT_URI [CLIENT_ID] [CLIENT_SECRET]');
  process.exit(2);
}

// login name -> claims; clara matches a registry user by username, r.risk by e-mail, the stranger by none
const ACCOUNTS = {
  clara: { preferred_username: 'clara', email: 'clara@example.com', email_verified: true, name: 'Clara C.' },
  'r.risk': { preferred_username: 'r.risk', email: 'rita@example.com', email_verified: true, name: 'Rita R.' },
  unverified: { preferred_username: 'unverified', email: 'rita@example.com', email_verified: false },
  stranger: {
    preferred_username: 'stranger',
    email: 'stranger@example.com',
    email_verified: true,
    name: 'Stranger S.',
  },
};

const issuer = `http://127.0.0.1:${port}`;
const provider = new Provider(issuer, {
  clients: [
    {
      client_id: clientId,
      client_secret: clientSecret,
      redirect_uris: [redirectUri],
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
    },
  ],
  pkce: { required: () => true },
  claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name', 'preferred_username'] },
  features: { devInteractions: { enabled: true } },
  cookies: { keys: ['aireg-oidc-test-provider-cookie-key'] },
  async findAccount(_ctx, sub) {
    const claims = ACCOUNTS[sub];
    if (!claims) return undefined;
    return { accountId: sub, async claims() { return { sub, ...claims }; } };
  },
});
provider.proxy = false;
provider.on('server_error', (_ctx, err) => console.error('server_error', err));

provider.listen(Number(port), '127.0.0.1', () => console.log(`ready ${issuer}`));
