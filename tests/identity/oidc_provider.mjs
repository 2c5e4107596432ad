// Test OpenID Connect provider (npm oidc-provider) for the sign-on tests: one confidential client "hall"
// whose redirect URI comes from HALL_TEST_REDIRECT_URI, dev login pages (any password), consent granted
// automatically. Listens on a free loopback port and prints it on the first line of stdout.
import http from 'node:http';
import Provider from 'oidc-provider';

const redirectUri = process.env.HALL_TEST_REDIRECT_URI;
const postLogout = process.env.HALL_TEST_POST_LOGOUT_URI;

const people = {
  lisi: { name: '李四', employee_number: 'T9002', email: 'lisi@college.example.edu.cn',
          department: 'xxgc', groups: ['教师', 'course_leader'] },
};

const server = http.createServer();
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  const provider = new Provider(`http://127.0.0.1:${port}`, {
    clients: [{
      client_id: 'hall', client_secret: 'hall-oidc-secret',
      redirect_uris: [redirectUri], post_logout_redirect_uris: [postLogout],
      grant_types: ['authorization_code'], response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
    }],
    pkce: { required: () => true },
    scopes: ['openid', 'profile', 'email', 'hall'],
    claims: {
      openid: ['sub'], profile: ['name', 'preferred_username'], email: ['email'],
      hall: ['employee_number', 'department', 'groups'],
    },
    features: { devInteractions: { enabled: true }, rpInitiatedLogout: { enabled: true } },
    async findAccount(ctx, id) {
      const person = people[id] || { name: id };
      return { accountId: id, async claims() { return { sub: id, preferred_username: id, ...person }; } };
    },
    async loadExistingGrant(ctx) {
      const grantId = ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
      if (grantId) return ctx.oidc.provider.Grant.find(grantId);
      const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
      grant.addOIDCScope('openid profile email hall');
      await grant.save();
      return grant;
    },
  });
  provider.on('server_error', (ctx, err) => console.error('server_error', err));
  server.on('request', provider.callback());
  console.log(port);
});
