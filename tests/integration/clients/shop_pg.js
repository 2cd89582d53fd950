// shop_pg.js - the sample shop's work through node-postgres (pg): queries
// with parameters (extended protocol), a named prepared statement, an
// insert and an update in a transaction, and a write into an encrypted column.
// Prints one line per step.
const { Client } = require('pg');

async function main() {
  const c = new Client({ connectionString: process.argv[2] });
  await c.connect();
  let found = 0;
  for (let id = 1; id <= 5; id++) {
    const r = await c.query({ name: 'customer', text: 'SELECT id, country FROM shop.customers WHERE id = $1', values: [id] });
    found += r.rowCount;
  }
  console.log(`read ${found}`);
  await c.query('BEGIN');
  const ins = await c.query('INSERT INTO shop.orders (customer_id, total_cents, currency) VALUES ($1, $2, $3) RETURNING id', [7, 4990, 'EUR']);
  const upd = await c.query('UPDATE shop.customers SET country = $1 WHERE id = $2', ['PT', 7]);
  await c.query('COMMIT');
  console.log(`inserted ${ins.rowCount} updated ${upd.rowCount}`);
  const enc = await c.query('UPDATE shop.customers SET phone = $1 WHERE id = $2', ['+351', 7]);
  console.log(`encrypted ${enc.rowCount}`); // the proxy encrypted the value on its way in
  const again = await c.query('SELECT count(*)::int AS n FROM shop.orders WHERE customer_id = $1', [7]);
  console.log(`orders ${again.rows[0].n > 0 ? 'some' : 'none'}`);
  // a statement the proxy refuses (a function of an encrypted column's
  // value) fails the transaction: what came before it is not committed
  await c.query('BEGIN');
  await c.query('INSERT INTO shop.orders (customer_id, total_cents, currency) VALUES ($1, $2, $3)', [7, 777001, 'EUR']);
  const refused = await c.query('UPDATE shop.customers SET email = lower($1) WHERE id = $2', ['X', 7]).catch((e) => e.code);
  const after = await c.query('SELECT $1::int AS one', [1]).catch((e) => e.code);
  const end = await c.query('COMMIT');
  const kept = await c.query('SELECT count(*)::int AS n FROM shop.orders WHERE total_cents = $1', [777001]);
  console.log(`refused ${refused} then ${after} ${end.command} kept ${kept.rows[0].n}`);
  await c.end();
}

main().catch((e) => { console.log(`error ${e.code} ${e.message}`); process.exit(1); });
