// The Express session tutorial's app, on the same store and cookie as the Rust app beside it
// (`cargo run -p express-tutorial -- --express`): log in on one, stay logged in on the other.
//
//   SESSION_STORE=redis://127.0.0.1:6379 SESSION_SECRETS=your-secret-key node app.js
//
// SESSION_STORE    redis://..., postgres://... or mongodb://... (required)
// SESSION_SECRETS  the cookie secrets, comma-separated; the first signs, all verify (required)
// LISTEN_ADDR      host:port to listen on (default 127.0.0.1:3001; port 0 picks a free one)
// SESSION_MAX_AGE  the cookie's maxAge in seconds, and so the store's expiry (default 3600)
// DEMO_USERNAME, DEMO_PASSWORD   the account /login accepts (JohnDoe / password123)
'use strict';

const crypto = require('node:crypto');
const net = require('node:net');
const express = require('express');
const session = require('express-session');

const env = process.env;

function fail(message) {
  console.error(`express-tutorial (Express): ${message}`);
  process.exit(1);
}

const storeUrl = env.SESSION_STORE || fail('set SESSION_STORE to a redis://, postgres:// or mongodb:// URL');
const secrets = (env.SESSION_SECRETS || '').split(',').filter((s) => s !== '');
if (secrets.length === 0) fail('set SESSION_SECRETS to the cookie secret(s), comma-separated');
const [host, port] = (() => {
  const addr = env.LISTEN_ADDR || '127.0.0.1:3001';
  const at = addr.lastIndexOf(':');
  return [addr.slice(0, at).replace(/^\[|\]$/g, ''), Number(addr.slice(at + 1))];
})();
const maxAge = Number(env.SESSION_MAX_AGE || 3600) * 1000;
if (!(maxAge > 0)) fail('SESSION_MAX_AGE must be a positive number of seconds');
const username = env.DEMO_USERNAME || 'JohnDoe';
const password = env.DEMO_PASSWORD || 'password123';
// The store's own place (connect-redis `sess:`, connect-pg-simple "session", connect-mongo
// `sessions`), as the Rust store's `.express_compatible()` uses by default.
function openStore(url) {
  const scheme = url.slice(0, url.indexOf(':'));
  if (scheme === 'redis' || scheme === 'rediss') {
    const { createClient } = require('redis');
    const { RedisStore } = require('connect-redis');
    const client = createClient({ url });
    client.on('error', (err) => console.error('redis:', err.message));
    return { store: new RedisStore({ client }), ready: client.connect() };
  }
  if (scheme === 'postgres' || scheme === 'postgresql') {
    const pg = require('pg');
    const PgStore = require('connect-pg-simple')(session);
    const pool = new pg.Pool({ connectionString: url });
    return { store: new PgStore({ pool, createTableIfMissing: true }), ready: pool.query('SELECT 1') };
  }
  if (scheme === 'mongodb' || scheme === 'mongodb+srv') {
    const { MongoStore } = require('connect-mongo');
    const store = MongoStore.create({ mongoUrl: url });
    return { store, ready: store.collectionP };
  }
  return fail(`unknown session store URL scheme ${scheme}: use redis://, postgres:// or mongodb://`);
}

const INVALID_LOGIN = 'Invalid login request: send JSON {"username": "...", "password": "..."}';

const { store, ready } = openStore(storeUrl);
const app = express();

// The Rust app's session setup, in express-session's words.
app.use(
  session({
    name: 'connect.sid',
    secret: secrets,
    store,
    resave: false,
    saveUninitialized: false,
    cookie: {
      maxAge,
      httpOnly: true,
      sameSite: 'lax',
      // Browsers never send a Secure cookie back over plain http, which this app serves: on a
      // loopback address the cookie is not Secure; anywhere else put HTTPS in front.
      ...(isLoopback(host) ? {} : { secure: true }),
    },
  }),
);

app.get('/set-session', (req, res) => {
  req.session.username = username;
  res.send('Session data set');
});

app.get('/get-session', (req, res) => {
  if (req.session.username) {
    res.send(`Hello, ${req.session.username}`);
  } else {
    res.send('No session data found');
  }
});

app.get('/clear-session', (req, res, next) => {
  req.session.destroy((err) => (err ? next(err) : res.send('Session data cleared')));
});

// JSON only, as on the Rust side: a cross-site form cannot send it (login CSRF).
app.post('/login', express.json({ strict: true }), (req, res, next) => {
  if (!req.is('application/json')) {
    return res.status(415).send('Send the login as JSON, with Content-Type: application/json');
  }
  const body = req.body;
  if (typeof body?.username !== 'string' || typeof body?.password !== 'string') {
    return res.status(422).send(INVALID_LOGIN);
  }
  if (!(same(body.username, username) & same(body.password, password))) {
    return res.status(401).send('Invalid credentials');
  }
  // A new id and no values at login, as on the Rust side.
  req.session.regenerate((err) => {
    if (err) return next(err);
    req.session.username = body.username;
    res.send('User logged in');
  });
});

// Routes the cross-side tests use besides the tutorial's.

// Adds one to the number under ?key= (read-modify-write: Express saves the whole session).
app.get('/increment', (req, res) => {
  const key = String(req.query.key || 'visits');
  if (key === 'cookie') return res.status(400).send('the key "cookie" is the session cookie');
  req.session[key] = (Number(req.session[key]) || 0) + 1;
  res.send(String(req.session[key]));
});

// "Remember me": this session's cookie lives ?days= days (express-session's cookie.maxAge).
app.get('/remember', (req, res) => {
  req.session.cookie.maxAge = Number(req.query.days || 30) * 24 * 60 * 60 * 1000;
  req.session.remembered = true;
  res.send('Remembered');
});

// The session as this app sees it, cookie object included.
app.get('/session', (req, res) => {
  res.json({ id: req.sessionID, maxAge: req.session.cookie.maxAge, session: req.session });
});

app.use((err, req, res, next) => {
  // Malformed JSON: a fixed text, not the parser's message (as on the Rust side).
  if (err.type === 'entity.parse.failed') return res.status(400).send(INVALID_LOGIN);
  console.error(err);
  res.status(500).send('Internal Server Error');
});

function same(a, b) {
  // Equal lengths for timingSafeEqual; the length itself is not secret.
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && crypto.timingSafeEqual(x, y) ? 1 : 0;
}

function isLoopback(h) {
  return h === 'localhost' || h === '::1' || (net.isIPv4(h) && h.startsWith('127.'));
}

Promise.resolve(ready)
  .then(() => {
    const server = app.listen(port, host, () => {
      const { address, port: bound } = server.address();
      const shown = address.includes(':') ? `[${address}]` : address;
      // The tests read this line to learn the port.
      console.log(`listening on http://${shown}:${bound}`);
    });
    server.on('error', (err) => fail(`cannot listen on ${host}:${port}: ${err.message}`));
    const stop = () => server.close(() => process.exit(0));
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
  })
  .catch((err) => fail(`session store: ${err.message}`));
