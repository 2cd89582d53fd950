// bidx_pg.js - blind indexes through node-postgres (extended protocol):
// an insert whose e-mail gets its index beside it, lookups by e-mail with
// a parameter, unnamed and as a named prepared statement (described by the
// server with the client's own parameters only). Prints one line per step.
const { Client } = require('pg');

async function main() {
  const c = new Client({ connectionString: process.argv[2] });
  await c.connect();
  const ins = await c.query('INSERT INTO shop.customers (email, name, country) VALUES ($1, $2, $3) RETURNING id, email',
    ['node@example.org', 'Node J', 'PT']);
  console.log(`inserted ${ins.rows[0].email}`);
  const id = ins.rows[0].id;
  for (const e of ['node@example.org', 'NODE@example.org ', process.argv[3]]) {
    const r = await c.query({ name: 'by-email', text: 'SELECT id, name FROM shop.customers WHERE email = $1', values: [e] });
    console.log(`found ${r.rowCount} ${r.rowCount && r.rows[0].id === id ? 'same' : 'other'}`);
  }
  await c.end();
}

main().catch((e) => { console.log(`error ${e.code} ${e.message}`); process.exit(1); });
