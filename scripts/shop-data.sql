-- shop-data.sql - realistic sample data for schemas/shop.sql, at any scale.
--
--   psql -v customers=100000 -f scripts/shop-data.sql        (default 1000)
--   psql -v customers=100000 -v seed=7 -f scripts/shop-data.sql
--
-- Per customer on average: 1.5 addresses, 3 orders of 2.5 items, a payment
-- and an invoice per paid order (about 90% of orders), 0.5 support tickets of
-- about 3 messages (customers and agents taking turns; the messages quote
-- names, phone numbers, e-mail and street addresses, and agents' names), and
-- 1 to 3 marketing consents. Customers live in 14 countries with local
-- cities, streets, postal codes, phone numbers and currencies; all e-mail
-- domains are reserved example domains (RFC 2606).
--
-- Deterministic: every value is a function of the row's key and of the seed
-- (hashint8extended, the hash PostgreSQL uses for hash partitioning, stable
-- across platforms and versions), never of random() or of the order rows are
-- produced in, so the same scale and seed give the same bytes whatever the
-- plan. Set-based (generate_series, a few temporary staging tables), one
-- transaction; rerunning it replaces the data. Ends with ANALYZE.

\set ON_ERROR_STOP on
\if :{?customers}
\else
\set customers 1000
\endif
\if :{?seed}
\else
\set seed 1
\endif

SELECT CASE WHEN :'customers' ~ '^[0-9]{1,9}$' AND :'seed' ~ '^[0-9]{1,6}$'
            THEN :'customers'::int >= 1 ELSE false END AS shop_args_ok \gset
\if :shop_args_ok
\else
DO $$BEGIN RAISE EXCEPTION 'shop-data.sql: customers must be an integer from 1 to 999999999, seed from 0 to 999999'; END$$;
\endif

BEGIN;
SET LOCAL client_min_messages = warning;
SET LOCAL work_mem = '256MB';
SET LOCAL maintenance_work_mem = '512MB';
SET LOCAL timezone = 'UTC';
SET LOCAL jit = off;  -- compiling costs more than it saves here

TRUNCATE shop.ticket_messages, shop.support_tickets, shop.marketing_consents, shop.invoices,
         shop.payments, shop.order_items, shop.orders, shop.addresses, shop.customers
         RESTART IDENTITY;

-- Bulk load as pg_restore does: foreign keys and secondary indexes are set
-- aside and put back at the end, where each foreign key is checked by one
-- join instead of a trigger per row (100,000 customers load in 14 s instead
-- of 26 s). Primary keys and unique constraints stay in force throughout.
CREATE TEMP TABLE shop_fkeys ON COMMIT DROP AS
SELECT conrelid::regclass::text AS tbl, conname, pg_get_constraintdef(oid) AS def
  FROM pg_constraint
 WHERE contype = 'f' AND connamespace = 'shop'::regnamespace;
CREATE TEMP TABLE shop_indexes ON COMMIT DROP AS
SELECT i.indexrelid::regclass::text AS name, pg_get_indexdef(i.indexrelid) AS def
  FROM pg_index i
  JOIN pg_class c ON c.oid = i.indexrelid
 WHERE c.relnamespace = 'shop'::regnamespace
   AND NOT EXISTS (SELECT 1 FROM pg_constraint k
                    WHERE k.conindid = i.indexrelid AND k.contype IN ('p', 'u', 'x'));
SELECT format('ALTER TABLE %s DROP CONSTRAINT %I', tbl, conname) FROM shop_fkeys ORDER BY tbl, conname \gexec
SELECT format('DROP INDEX %s', name) FROM shop_indexes ORDER BY name \gexec

-- Deterministic pseudo-random helpers ---------------------------------------
-- h(k, salt): a non-negative 63-bit hash of key k; salt picks the attribute.
SELECT format($f$
CREATE FUNCTION pg_temp.h(k bigint, salt int) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS 'SELECT hashint8extended(k, salt + %s) & 9223372036854775807'$f$, :seed::bigint * 1000) \gexec

-- u: uniform in [0, 1)
CREATE FUNCTION pg_temp.u(k bigint, salt int) RETURNS float8
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS 'SELECT (pg_temp.h(k, salt) >> 10)::float8 / 9007199254740992.0';

-- one element of an array
CREATE FUNCTION pg_temp.pick(a anyarray, k bigint, salt int) RETURNS anyelement
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS 'SELECT a[1 + pg_temp.h(k, salt) % cardinality(a)]';

-- a geometric count (0, 1, 2, ...) with the given mean: a few customers
-- order a lot, many order once or never
CREATE FUNCTION pg_temp.geom(mean float8, k bigint, salt int) RETURNS int
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS 'SELECT floor(ln(1 - pg_temp.u(k, salt)) / ln(mean / (1 + mean)))::int';

-- n random digits
CREATE FUNCTION pg_temp.digits(n int, k bigint, salt int) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS 'SELECT lpad((pg_temp.h(k, salt) % (10::bigint ^ n)::bigint)::text, n, ''0'')';

-- The data set's "now": nothing happens after it.
CREATE FUNCTION pg_temp.ref() RETURNS timestamptz LANGUAGE sql IMMUTABLE
AS $$SELECT timestamptz '2025-06-30 18:00:00+00'$$;

-- Vocabulary -------------------------------------------------------------------

CREATE TEMP TABLE cty ON COMMIT DROP AS
SELECT row_number() OVER () AS idx, * FROM (VALUES
 ('DE', 'EUR', 1.0,  '+49',  '{151,160,170,171,176}'::text[], 28, false,
  '{Berlin,Hamburg,München,Köln,"Frankfurt am Main",Stuttgart,Düsseldorf,Leipzig,Dortmund,Bremen,Dresden,Hannover,Nürnberg}'::text[],
  '{Hauptstraße,Schulstraße,Gartenstraße,Bahnhofstraße,Dorfstraße,Bergstraße,Lindenstraße,Kirchstraße,Waldstraße,Goethestraße,Schillerstraße,Friedrichstraße}'::text[]),
 ('FR', 'EUR', 1.0,  '+33',  '{6,7}', 11, true,
  '{Paris,Marseille,Lyon,Toulouse,Nice,Nantes,Strasbourg,Montpellier,Bordeaux,Lille}',
  '{"rue de la Paix","rue Victor Hugo","avenue Jean Jaurès","boulevard Voltaire","rue de la République","rue Pasteur","place de la Mairie","rue du Moulin"}'),
 ('GB', 'GBP', 0.85, '+44',  '{7700,7911,7400,7824}', 11, true,
  '{London,Manchester,Birmingham,Leeds,Glasgow,Liverpool,Bristol,Edinburgh,Cardiff,Belfast}',
  '{"High Street","Station Road","Main Street","Park Road","Church Lane","Victoria Road","Green Lane","Manor Road"}'),
 ('NL', 'EUR', 1.0,  '+31',  '{6}', 7, false,
  '{Amsterdam,Rotterdam,"Den Haag",Utrecht,Eindhoven,Groningen,Tilburg,Almere}',
  '{Kerkstraat,Dorpsstraat,Schoolstraat,Molenweg,Stationsweg,Julianastraat,Prinsengracht}'),
 ('AT', 'EUR', 1.0,  '+43',  '{664,660,676,699}', 5, false,
  '{Wien,Graz,Linz,Salzburg,Innsbruck,Klagenfurt}',
  '{Hauptplatz,Bahnhofstraße,Kirchengasse,"Mariahilfer Straße",Landstraße,Schulgasse}'),
 ('CH', 'CHF', 1.0,  '+41',  '{76,78,79}', 4, false,
  '{Zürich,Genève,Basel,Bern,Lausanne,Luzern,"St. Gallen"}',
  '{Bahnhofstrasse,Hauptstrasse,Dorfstrasse,"Rue du Rhône",Seestrasse,Kirchgasse}'),
 ('IT', 'EUR', 1.0,  '+39',  '{320,333,347,348}', 6, false,
  '{Roma,Milano,Napoli,Torino,Palermo,Bologna,Firenze}',
  '{"Via Roma","Via Garibaldi","Via Mazzini","Corso Italia","Via Dante","Piazza della Repubblica"}'),
 ('ES', 'EUR', 1.0,  '+34',  '{600,612,655,699}', 6, false,
  '{Madrid,Barcelona,Valencia,Sevilla,Zaragoza,Málaga,Bilbao}',
  '{"Calle Mayor","Gran Vía","Calle Real","Avenida de la Constitución","Calle de Alcalá","Plaza de España"}'),
 ('US', 'USD', 1.1,  '+1',   '{212,415,312,617,206}', 9, true,
  '{"New York","Los Angeles",Chicago,Houston,Phoenix,Seattle,Boston,Denver,Austin,Portland}',
  '{"Main Street","Oak Street","Maple Avenue","Park Avenue","Washington Street","Elm Street","2nd Street","Lake Drive"}'),
 ('PL', 'PLN', 4.3,  '+48',  '{501,600,691,790}', 4, false,
  '{Warszawa,Kraków,Łódź,Wrocław,Poznań,Gdańsk}',
  '{"ul. Długa","ul. Marszałkowska","ul. Polna","ul. Leśna","ul. Słoneczna","ul. Kościuszki"}'),
 ('SE', 'SEK', 11.5, '+46',  '{70,72,73,76}', 3, false,
  '{Stockholm,Göteborg,Malmö,Uppsala,Västerås,Örebro}',
  '{Storgatan,Drottninggatan,Kungsgatan,Skolgatan,Kyrkogatan,Järnvägsgatan}'),
 ('DK', 'DKK', 7.45, '+45',  '{20,30,40,50}', 2, false,
  '{København,Aarhus,Odense,Aalborg}',
  '{Østergade,Vestergade,Nørregade,Algade,Strøget}'),
 ('IE', 'EUR', 1.0,  '+353', '{83,85,86,87}', 2, true,
  '{Dublin,Cork,Galway,Limerick}',
  '{"Main Street","Church Street","O''Connell Street","Bridge Street"}'),
 ('BE', 'EUR', 1.0,  '+32',  '{470,475,486,495}', 2, false,
  '{Bruxelles,Antwerpen,Gent,Liège,Brugge}',
  '{"Rue de la Loi",Kerkstraat,Stationsstraat,"Rue Neuve","Grote Markt"}')
) AS v(code, currency, fx, dial, mobile, weight, number_first, cities, streets);

-- cumulative weights: a country is picked by where u falls in [lo, hi)
ALTER TABLE cty ADD lo float8, ADD hi float8;
UPDATE cty SET lo = w.lo, hi = w.hi
  FROM (SELECT idx, (sum(weight) OVER (ORDER BY idx) - weight)::float8 / sum(weight) OVER () AS lo,
               sum(weight) OVER (ORDER BY idx)::float8 / sum(weight) OVER () AS hi FROM cty) w
 WHERE cty.idx = w.idx;
UPDATE cty SET hi = 2 WHERE hi >= 1;

CREATE FUNCTION pg_temp.first_names() RETURNS text[] LANGUAGE sql IMMUTABLE AS $$SELECT
'{Anna,Lena,Sophie,Marie,Laura,Julia,Emma,Mia,Hannah,Lea,Sarah,Lisa,Clara,Zoë,Chloé,Camille,Léa,Manon,Inès,Olivia,
  Amelia,Isla,Grace,Charlotte,Emily,Sofia,Giulia,Francesca,Lucía,María,Carmen,Paula,Agnieszka,Katarzyna,Małgorzata,
  Astrid,Ingrid,Freja,Saoirse,Aoife,Fatima,Ayşe,Elif,Priya,Mei,Yuki,Jennifer,Jessica,Ashley,Madison,
  Lukas,Leon,Finn,Jonas,Paul,Felix,Maximilian,Elias,Noah,Ben,Jürgen,Stefan,Thomas,Michael,Andreas,
  Lucas,Hugo,Louis,Théo,Gabriel,Jules,Oliver,George,Harry,Jack,James,William,Lorenzo,Matteo,Leonardo,
  Alejandro,Pablo,José,Javier,Jakub,Łukasz,Piotr,Søren,Mads,Erik,Lars,Seán,Cian,Mehmet,Ahmed,Omar,
  Raj,Wei,Hiroshi,Daniel,David,Christopher,Matthew,Tyler}'::text[]$$;

CREATE FUNCTION pg_temp.last_names() RETURNS text[] LANGUAGE sql IMMUTABLE AS $$SELECT
'{Müller,Schmidt,Schneider,Fischer,Weber,Meyer,Wagner,Becker,Schulz,Hoffmann,Schäfer,Koch,Bauer,Richter,
  Klein,Wolf,Schröder,Neumann,Schwarz,Zimmermann,Braun,Krüger,Hofmann,Hartmann,Lange,Schmitt,Werner,
  Martin,Bernard,Dubois,Thomas,Robert,Richard,Petit,Durand,Leroy,Moreau,Lefèvre,Smith,Jones,Taylor,Brown,
  Williams,Wilson,Johnson,Davies,Evans,Walker,Wright,"O''Brien",Murphy,Kelly,"de Vries",Jansen,"van Dijk",Bakker,
  Visser,Rossi,Russo,Ferrari,Esposito,Bianchi,Romano,García,Fernández,González,Rodríguez,López,Martínez,
  Sánchez,Pérez,Nowak,Kowalski,Wiśniewski,Wójcik,Kowalczyk,Andersson,Johansson,Karlsson,Nilsson,Jensen,
  Nielsen,Hansen,Pedersen,Yılmaz,Kaya,Demir,Nguyen,Tran,Kim,Lee,Chen,Wang,Patel,Singh,Khan,Miller,Davis,
  Anderson,Jackson}'::text[]$$;

-- customer-service agents: other people's personal data in the same rows
CREATE FUNCTION pg_temp.agents() RETURNS text[] LANGUAGE sql IMMUTABLE AS $$SELECT
'{"Jonas Weber","Sophie Martin","Liam O''Connor","Emma Johansson","Katrin Vogel","Marco Bianchi",
  "Nadia El Amrani","Tom Fletcher","Julia Nowak","Pierre Lambert","Sanne de Jong","Miguel Torres",
  "Hanna Berg","Oliver Grant","Lea Hofer","Ravi Kumar","Claire Dubois","Felix Brandt","Aisha Mensah",
  "Niklas Lindqvist","Paula Schuster","Daniel Kovač","Maren Petersen","Chiara Conti","Yusuf Arslan"}'::text[]$$;

CREATE FUNCTION pg_temp.domains() RETURNS text[] LANGUAGE sql IMMUTABLE AS $$SELECT
'{example.com,example.com,example.net,example.org,mail.example,post.example,inbox.example,webmail.example}'::text[]$$;

-- (subject, the customer's opening message)
-- format() arguments in every message: %1$s first name, %2$s full name,
-- %3$s order reference, %4$s phone, %5$s e-mail, %6$s address, %7$s agent's
-- first name, %8$s another agent's full name, %9$s agent's full name
CREATE TEMP TABLE topic ON COMMIT DROP AS
SELECT row_number() OVER () AS idx, * FROM (VALUES
 ('Where is my order?',
  'Hello, I placed %3$s over a week ago and the tracking page still says "label created". Could you check what is going on? Thanks, %2$s'),
 ('Parcel arrived damaged',
  'Hi, the parcel for %3$s arrived damaged, the box was crushed and one item is broken. Photos attached. You can reach me on %4$s. %1$s'),
 ('Change of delivery address',
  'Please change the delivery address for %3$s to %6$s, I am moving next week. Regards, %2$s'),
 ('Charged twice',
  'I was charged twice for %3$s. Please refund the duplicate payment as soon as possible. %2$s, %5$s'),
 ('Refund not received',
  'I still have not received the refund for the return of %3$s. It has been three weeks. %2$s'),
 ('Exchange for another size',
  'The jacket from %3$s is too small, can I exchange it for a larger size? Best, %1$s'),
 ('Cancel my order',
  'My husband placed %3$s with my account by mistake, can you cancel it? Call me on %4$s if needed. Thanks, %1$s'),
 ('Please delete my account',
  'Please delete my account and all my data, I no longer want to shop here. %2$s (%5$s)'),
 ('Unsubscribe',
  'Please unsubscribe me from the newsletter, I keep getting e-mails at %5$s although I opted out. %2$s'),
 ('Copy of invoice',
  'Could you send me a copy of the invoice for %3$s? I need it for my tax return. My address is %6$s. %2$s'),
 ('Wrong item received',
  'I received a different item than the one I ordered in %3$s. How do I send it back? %1$s, %4$s'),
 ('Voucher code not working',
  'The voucher code from your newsletter does not work at checkout. My account is %5$s. %1$s')
) AS v(subject, opening);

CREATE FUNCTION pg_temp.agent_replies() RETURNS text[] LANGUAGE sql IMMUTABLE AS $$SELECT ARRAY[
 'Hello %1$s, thank you for contacting us. I have checked %3$s and the carrier confirms it is on its way; you should receive it within two working days. Kind regards, %9$s, Customer Service',
 'Hi %1$s, I''m sorry about that. I have sent a replacement for %3$s at no cost to you. Best regards, %7$s',
 'Dear %2$s, we have refunded the amount to your original payment method. It can take 3-5 business days to appear. %9$s',
 'Hello %1$s, could you please confirm the address we have on file: %6$s? Thanks, %7$s',
 'Hi %1$s, I tried to call you on %4$s but could not reach you. Please reply here when convenient. %7$s',
 'Hello %1$s, I have forwarded your request to our data protection team; you will receive a confirmation at %5$s. Kind regards, %9$s',
 'Hi %1$s, my colleague %8$s will follow up on this tomorrow as I am out of the office. Best, %7$s',
 'Hello %1$s, I have updated %3$s as requested. Is there anything else I can help with? %7$s'
]$$;

CREATE FUNCTION pg_temp.customer_replies() RETURNS text[] LANGUAGE sql IMMUTABLE AS $$SELECT ARRAY[
 'Hello %7$s, thanks for the quick answer. Yes, that works for me.',
 'Hi %7$s, I sent you the photos yesterday, did you get them? %1$s',
 'Thank you %7$s, the replacement arrived today. Everything is fine now.',
 'Still nothing. This is really frustrating, please call me on %4$s. %2$s',
 'OK, thanks. My daughter will be at home to accept the parcel if I am out.',
 'Yes, the address is correct: %6$s.',
 'Thanks %7$s. If I am out, my neighbour Mrs Keller at number 14 can take the parcel for me.'
]$$;

CREATE TEMP TABLE prod ON COMMIT DROP AS
WITH p(pidx, name, price) AS (
  SELECT row_number() OVER () - 1, * FROM (VALUES
   ('Basic T-shirt', 1999), ('Hoodie', 4999), ('Slim-fit jeans', 5999), ('Running shoes', 8999),
   ('Sneakers', 7499), ('Rain jacket', 9999), ('Wool scarf', 2999), ('Leather belt', 3499),
   ('Backpack 20 l', 5499), ('Water bottle', 1499), ('Yoga mat', 2999), ('Socks, 5 pairs', 1299),
   ('Winter boots', 11999), ('Sunglasses', 3999), ('Baseball cap', 1799), ('Chinos', 4999),
   ('Summer dress', 3999), ('Linen shirt', 4499), ('Cardigan', 5999), ('Sports bra', 2999),
   ('Swim shorts', 2499), ('Travel pillow', 1999), ('Umbrella', 1999), ('Gloves', 2499),
   ('Beanie', 1499), ('Wallet', 3999), ('Down jacket', 14999), ('Polo shirt', 2999),
   ('Pyjamas', 3499), ('Slippers', 2499)) AS v),
c(cidx, code, colour) AS (
  SELECT row_number() OVER () - 1, * FROM (VALUES
   ('BLK', 'black'), ('WHT', 'white'), ('NVY', 'navy'), ('GRY', 'grey'), ('RED', 'red'), ('GRN', 'olive')) AS v),
s(sidx, size) AS (
  SELECT row_number() OVER () - 1, * FROM (VALUES ('S'), ('M'), ('L'), ('XL')) AS v)
SELECT p.pidx * 24 + c.cidx * 4 + s.sidx AS idx,
       format('SKU-%s-%s-%s', lpad((p.pidx + 101)::text, 4, '0'), c.code, s.size) AS sku,
       format('%s, %s, size %s', p.name, c.colour, s.size) AS description,
       p.price
  FROM p, c, s;
CREATE UNIQUE INDEX ON prod (idx);

-- Customers ---------------------------------------------------------------------
-- Sign-up dates grow with the id, denser towards the present (a growing shop).

CREATE TEMP TABLE cust ON COMMIT DROP AS
SELECT s.id, c.idx AS cidx, c.code AS country, c.currency, c.fx, s.first, s.last,
       s.first || ' ' || s.last AS name,
       s.created_at,
       -- unique: every address contains the id
       translate(lower(CASE s.email_style
                         WHEN 0 THEN s.first || '.' || s.last || s.id
                         WHEN 1 THEN left(s.first, 1) || s.last || s.id
                         WHEN 2 THEN s.last || '.' || s.first || '.' || s.id
                         ELSE s.first || '_' || s.id
                       END),
                 'äàáâãåāçćčéèêëęěíìîïłñńňóòôöõøśšşßúùûüůýÿźżžæığÄÖÜŁŚŻ'' ',
                 'aaaaaaaccceeeeeeiiiilnnnoooooossssuuuuuyyzzzaigaoulsz')
         || '@' || pg_temp.pick(pg_temp.domains(), s.id, 4) AS email,
       CASE WHEN pg_temp.u(s.id, 5) < 0.88
            THEN c.dial || ' ' || pg_temp.pick(c.mobile, s.id, 6) || ' ' || pg_temp.digits(7, s.id, 7)
       END AS phone,
       CASE WHEN pg_temp.u(s.id, 8) < 0.9
            THEN to_char(date '1940-01-01' + (pg_temp.h(s.id, 9) % 24500)::int, 'YYYY-MM-DD')
       END AS date_of_birth,
       1 + (pg_temp.u(s.id, 10) < 0.5)::int AS n_addresses,
       least(pg_temp.geom(3.0, s.id, 11), 60) AS n_orders,
       least(pg_temp.geom(0.5, s.id, 12), 8) AS n_tickets,
       1 + (pg_temp.h(s.id, 13) % 3)::int AS n_consents
  FROM (SELECT i AS id,
               pg_temp.pick(pg_temp.first_names(), i, 1) AS first,
               pg_temp.pick(pg_temp.last_names(), i, 2) AS last,
               pg_temp.u(i, 3) AS cu,
               (pg_temp.h(i, 14) % 4)::int AS email_style,
               timestamptz '2018-01-01 00:00:00+00'
                 + (pg_temp.ref() - timestamptz '2018-01-01 00:00:00+00' - interval '1 day')
                   * ((i - 1 + pg_temp.u(i, 15)) / :customers) ^ 0.7 AS created_at
          FROM generate_series(1, :customers::bigint) i) s
  JOIN cty c ON s.cu >= c.lo AND s.cu < c.hi;
ALTER TABLE cust ADD PRIMARY KEY (id);

INSERT INTO shop.customers (id, email, name, phone, date_of_birth, country, created_at)
SELECT id, email, name, phone, date_of_birth, country, date_trunc('second', created_at)
  FROM cust ORDER BY id;

-- Addresses: a shipping address for everyone, a billing address for half ------

CREATE TEMP TABLE addr ON COMMIT DROP AS
SELECT row_number() OVER (ORDER BY a.customer_id, a.n) AS id, a.*,
       a.street || ', ' || a.postal_code || ' ' || a.city || ', ' || a.country AS line
  FROM (SELECT cu.id AS customer_id, n,
               CASE n WHEN 1 THEN 'shipping' ELSE 'billing' END AS kind,
               CASE WHEN c.number_first
                    THEN (1 + pg_temp.h(k, 20) % 250) || ' ' || pg_temp.pick(c.streets, k, 21)
                    ELSE pg_temp.pick(c.streets, k, 21) || ' ' || (1 + pg_temp.h(k, 20) % 120)
               END AS street,
               pg_temp.pick(c.cities, k, 22) AS city,
               CASE c.code
                 WHEN 'GB' THEN pg_temp.pick('{SW1A,M1,B2,LS1,G2,L1,BS1,EH1,CF10,BT1}'::text[], k, 23)
                                || ' ' || (pg_temp.h(k, 24) % 10) || chr(65 + (pg_temp.h(k, 25) % 26)::int)
                                || chr(65 + (pg_temp.h(k, 26) % 26)::int)
                 WHEN 'NL' THEN (1000 + pg_temp.h(k, 24) % 9000) || ' ' || chr(65 + (pg_temp.h(k, 25) % 26)::int)
                                || chr(65 + (pg_temp.h(k, 26) % 26)::int)
                 WHEN 'SE' THEN (100 + pg_temp.h(k, 24) % 900) || ' ' || pg_temp.digits(2, k, 25)
                 WHEN 'PL' THEN pg_temp.digits(2, k, 24) || '-' || pg_temp.digits(3, k, 25)
                 WHEN 'US' THEN pg_temp.digits(5, k, 24)
                 WHEN 'IE' THEN pg_temp.pick('{D01,D02,D04,D08,T12,H91,V94}'::text[], k, 23)
                                || ' ' || upper(substr(md5(k::text), 1, 4))
                 ELSE CASE WHEN c.code IN ('AT', 'CH', 'DK', 'BE')
                           THEN (1000 + pg_temp.h(k, 24) % 9000)::text
                           ELSE lpad((1000 + pg_temp.h(k, 24) % 98000)::text, 5, '0')
                      END
               END AS postal_code,
               c.code AS country
          FROM cust cu
          JOIN cty c ON c.idx = cu.cidx
         CROSS JOIN LATERAL generate_series(1, cu.n_addresses) n
         CROSS JOIN LATERAL (SELECT cu.id * 4 + n AS k) kk) a;

INSERT INTO shop.addresses (id, customer_id, kind, street, city, postal_code, country)
SELECT id, customer_id, kind, street, city, postal_code, country FROM addr ORDER BY id;

-- each customer's billing address: the billing one, or the only one
CREATE TEMP TABLE bill ON COMMIT DROP AS
SELECT DISTINCT ON (customer_id) customer_id, line FROM addr ORDER BY customer_id, n DESC;
ALTER TABLE bill ADD PRIMARY KEY (customer_id);

-- Orders and their items ---------------------------------------------------------
-- Order ids follow time, as a sequence would have handed them out.

CREATE TEMP TABLE ord ON COMMIT DROP AS
SELECT row_number() OVER (ORDER BY o.created_at, o.customer_id, o.n) AS id, o.*,
       CASE WHEN o.age < interval '2 days' THEN
              CASE WHEN o.s < 0.45 THEN 'pending' WHEN o.s < 0.87 THEN 'paid' ELSE 'cancelled' END
            WHEN o.age < interval '7 days' THEN
              CASE WHEN o.s < 0.10 THEN 'paid' WHEN o.s < 0.62 THEN 'shipped'
                   WHEN o.s < 0.92 THEN 'delivered' ELSE 'cancelled' END
            ELSE
              CASE WHEN o.s < 0.86 THEN 'delivered' WHEN o.s < 0.93 THEN 'cancelled' ELSE 'refunded' END
       END AS status
  FROM (SELECT cu.id AS customer_id, n, cu.currency, cu.fx,
               date_trunc('second', cu.created_at + (pg_temp.ref() - cu.created_at) * pg_temp.u(k, 30)) AS created_at,
               (pg_temp.ref() - cu.created_at) * (1 - pg_temp.u(k, 30)) AS age,
               pg_temp.u(k, 31) AS s,
               1 + least(pg_temp.geom(1.5, k, 32), 15) AS n_items,
               -- mostly to the shipping address, sometimes to the billing one
               CASE WHEN cu.n_addresses = 2 AND pg_temp.u(k, 33) < 0.15 THEN 2 ELSE 1 END AS ship_n
          FROM cust cu
         CROSS JOIN LATERAL generate_series(1, cu.n_orders) n
         CROSS JOIN LATERAL (SELECT cu.id * 64 + n AS k) kk) o;
ALTER TABLE ord ADD PRIMARY KEY (id);

CREATE TEMP TABLE item ON COMMIT DROP AS
SELECT row_number() OVER (ORDER BY i.order_id, i.m) AS id, i.order_id, i.m, p.sku, p.description,
       i.quantity,
       -- local prices end in 99
       greatest(round(p.price * i.fx / 100) * 100 - 1, 99)::bigint AS unit_price_cents
  FROM (SELECT o.id AS order_id, m, o.fx,
               -- popular products more often
               floor(30 * pg_temp.u(o.id * 16 + m, 40) ^ 2)::int * 24 + (pg_temp.h(o.id * 16 + m, 41) % 24)::int AS pidx,
               1 + least(pg_temp.geom(0.25, o.id * 16 + m, 42), 9) AS quantity
          FROM ord o
         CROSS JOIN LATERAL generate_series(1, o.n_items) m) i
  JOIN prod p ON p.idx = i.pidx;

CREATE TEMP TABLE ordtotal ON COMMIT DROP AS
SELECT o.id, o.customer_id, o.status, o.currency, o.created_at, o.n, o.ship_n,
       (t.items + CASE WHEN t.items < round(5000 * o.fx) THEN round(495 * o.fx) ELSE 0 END)::bigint AS total_cents
  FROM ord o
  JOIN (SELECT order_id, sum(quantity * unit_price_cents) AS items FROM item GROUP BY order_id) t
    ON t.order_id = o.id;
ALTER TABLE ordtotal ADD PRIMARY KEY (id);

INSERT INTO shop.orders (id, customer_id, status, total_cents, currency, shipping_address_id, created_at)
SELECT o.id, o.customer_id, o.status, o.total_cents, o.currency, a.id, o.created_at
  FROM ordtotal o
  JOIN addr a ON a.customer_id = o.customer_id AND a.n = o.ship_n
 ORDER BY o.id;

INSERT INTO shop.order_items (id, order_id, sku, description, quantity, unit_price_cents)
SELECT id, order_id, sku, description, quantity, unit_price_cents FROM item ORDER BY id;

-- Payments and invoices: one each per paid order -------------------------------

CREATE TEMP TABLE pay ON COMMIT DROP AS
SELECT row_number() OVER (ORDER BY p.paid_at, p.order_id) AS id, p.*
  FROM (SELECT o.id AS order_id, o.customer_id, o.total_cents, b.line AS billing_address, m.method,
               CASE WHEN m.method = 'card' THEN pg_temp.digits(4, o.id, 51) END AS card_last4,
               least(o.created_at + CASE WHEN m.method = 'bank_transfer'
                                         THEN interval '1 hour' * (6 + pg_temp.h(o.id, 52) % 60)
                                         ELSE interval '1 second' * (20 + pg_temp.h(o.id, 52) % 900)
                                    END,
                     pg_temp.ref()) AS paid_at
          FROM ordtotal o
          JOIN bill b ON b.customer_id = o.customer_id
         CROSS JOIN LATERAL (SELECT CASE WHEN pg_temp.u(o.id, 50) < 0.58 THEN 'card'
                                         WHEN pg_temp.u(o.id, 50) < 0.83 THEN 'paypal'
                                         WHEN pg_temp.u(o.id, 50) < 0.95 THEN 'bank_transfer'
                                         ELSE 'gift_card' END AS method) m
         WHERE o.status IN ('paid', 'shipped', 'delivered', 'refunded')) p;

INSERT INTO shop.payments (id, order_id, method, card_last4, billing_address, amount_cents, paid_at)
SELECT id, order_id, method, card_last4, billing_address, total_cents, paid_at FROM pay ORDER BY id;

INSERT INTO shop.invoices (id, customer_id, order_id, number, billing_name, billing_address, total_cents, issued_at)
SELECT i.id, i.customer_id, i.order_id,
       'INV-' || to_char(i.issued_at, 'YYYY') || '-' || lpad(i.id::text, 7, '0'),
       cu.name, i.billing_address, i.total_cents, i.issued_at
  FROM (SELECT row_number() OVER (ORDER BY issued_at, order_id) AS id, *
          FROM (SELECT p.order_id, p.customer_id, p.total_cents, p.billing_address,
                       least(p.paid_at + interval '1 minute' * (1 + pg_temp.h(p.order_id, 55) % 720),
                             pg_temp.ref()) AS issued_at
                  FROM pay p) x) i
  JOIN cust cu ON cu.id = i.customer_id
 ORDER BY i.id;

-- Support tickets and their messages ----------------------------------------------

CREATE TEMP TABLE tix ON COMMIT DROP AS
SELECT row_number() OVER (ORDER BY t.created_at, t.customer_id, t.n) AS id, t.*,
       CASE WHEN t.status = 'open' AND pg_temp.u(t.k, 63) < 0.5 THEN NULL
            ELSE pg_temp.pick(pg_temp.agents(), t.k, 64) END AS agent,
       pg_temp.pick(pg_temp.agents(), t.k, 65) AS colleague
  FROM (SELECT cu.id AS customer_id, n, k,
               cu.created_at + (pg_temp.ref() - cu.created_at) * pg_temp.u(k, 60) AS created_at,
               1 + (pg_temp.h(k, 61) % 12)::int AS topic,
               CASE WHEN age > interval '14 days' THEN
                      CASE WHEN pg_temp.u(k, 62) < 0.85 THEN 'closed' ELSE 'resolved' END
                    WHEN age > interval '2 days' THEN
                      CASE WHEN pg_temp.u(k, 62) < 0.4 THEN 'resolved'
                           WHEN pg_temp.u(k, 62) < 0.7 THEN 'waiting_on_customer' ELSE 'open' END
                    ELSE CASE WHEN pg_temp.u(k, 62) < 0.7 THEN 'open' ELSE 'waiting_on_customer' END
               END AS status
          FROM cust cu
         CROSS JOIN LATERAL generate_series(1, cu.n_tickets) n
         CROSS JOIN LATERAL (SELECT cu.id * 16 + n AS k) kk
         CROSS JOIN LATERAL (SELECT (pg_temp.ref() - cu.created_at) * (1 - pg_temp.u(k, 60)) AS age) a) t;

INSERT INTO shop.support_tickets (id, customer_id, subject, status, assigned_agent, created_at)
SELECT t.id, t.customer_id, tp.subject, t.status, t.agent, date_trunc('second', t.created_at)
  FROM tix t JOIN topic tp ON tp.idx = t.topic
 ORDER BY t.id;

-- the order a ticket is about: one of the customer's, if any
CREATE TEMP TABLE tixctx ON COMMIT DROP AS
SELECT t.id, t.customer_id, t.created_at, t.topic, t.agent, t.colleague, cu.first, cu.name, cu.email,
       coalesce(cu.phone, 'my mobile') AS phone, b.line AS address,
       coalesce('order #' || o.id, 'my last order') AS order_ref,
       CASE WHEN t.agent IS NULL THEN 1 ELSE 1 + least(pg_temp.geom(2.0, t.k, 66), 20) END AS n_messages
  FROM tix t
  JOIN cust cu ON cu.id = t.customer_id
  JOIN bill b ON b.customer_id = t.customer_id
  LEFT JOIN ord o ON o.customer_id = t.customer_id
                 AND o.n = 1 + pg_temp.h(t.k, 67) % greatest(cu.n_orders, 1);

INSERT INTO shop.ticket_messages (id, ticket_id, author_kind, author_name, body, created_at)
SELECT row_number() OVER (ORDER BY m.created_at, m.ticket_id, m.m),
       m.ticket_id, m.author_kind, m.author_name, m.body, m.created_at
  FROM (SELECT t.id AS ticket_id, m,
               CASE WHEN m % 2 = 1 THEN 'customer' ELSE 'agent' END AS author_kind,
               CASE WHEN m % 2 = 1 THEN t.name ELSE t.agent END AS author_name,
               format(CASE WHEN m = 1 THEN tp.opening
                           WHEN m % 2 = 1 THEN pg_temp.pick(pg_temp.customer_replies(), t.id * 32 + m, 70)
                           ELSE pg_temp.pick(pg_temp.agent_replies(), t.id * 32 + m, 71) END,
                      t.first, t.name, t.order_ref, t.phone, t.email, t.address,
                      split_part(t.agent, ' ', 1), t.colleague, t.agent) AS body,
               date_trunc('second', t.created_at + interval '5 hours' * (m - 1)
                                    + interval '1 second' * (pg_temp.h(t.id * 32 + m, 72) % 14400)) AS created_at
          FROM tixctx t
          JOIN topic tp ON tp.idx = t.topic
         CROSS JOIN LATERAL generate_series(1, t.n_messages) m) m
 ORDER BY 1;

-- Marketing consents: 1 to 3 channels, granted, withdrawn or refused -------------

INSERT INTO shop.marketing_consents (id, customer_id, channel, granted, granted_at, withdrawn_at, source)
SELECT row_number() OVER (ORDER BY c.customer_id, c.n), c.customer_id, c.channel,
       c.state = 'granted',
       CASE WHEN c.state <> 'refused' THEN c.granted_at END,
       CASE WHEN c.state = 'withdrawn'
            THEN date_trunc('second', c.granted_at + (pg_temp.ref() - c.granted_at) * pg_temp.u(c.k, 83)) END,
       c.source
  FROM (SELECT cu.id AS customer_id, n, k,
               (ARRAY['email', 'sms', 'post'])[1 + (cu.id + n) % 3] AS channel,
               CASE WHEN pg_temp.u(k, 80) < 0.55 THEN 'granted'
                    WHEN pg_temp.u(k, 80) < 0.80 THEN 'withdrawn' ELSE 'refused' END AS state,
               date_trunc('second', cu.created_at + interval '1 second' * (pg_temp.h(k, 81) % 86400)) AS granted_at,
               pg_temp.pick('{signup_form,checkout,newsletter_form,customer_service,preference_center}'::text[], k, 82) AS source
          FROM cust cu
         CROSS JOIN LATERAL generate_series(1, cu.n_consents) n
         CROSS JOIN LATERAL (SELECT cu.id * 4 + n AS k) kk) c
 ORDER BY 1;

-- Indexes and foreign keys back -------------------------------------------------

SELECT def FROM shop_indexes ORDER BY name \gexec
SELECT format('ALTER TABLE %s ADD CONSTRAINT %I %s', tbl, conname, def) FROM shop_fkeys ORDER BY tbl, conname \gexec

-- Identity sequences continue after the generated ids ---------------------------

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['customers', 'addresses', 'orders', 'order_items', 'payments', 'invoices',
                             'support_tickets', 'ticket_messages', 'marketing_consents'] LOOP
        EXECUTE format('SELECT setval(pg_get_serial_sequence(%L, %L), coalesce(max(id), 0) + 1, false) FROM shop.%I',
                       'shop.' || t, 'id', t);
    END LOOP;
END $$;

COMMIT;

ANALYZE shop.customers, shop.addresses, shop.orders, shop.order_items, shop.payments, shop.invoices,
        shop.support_tickets, shop.ticket_messages, shop.marketing_consents;
