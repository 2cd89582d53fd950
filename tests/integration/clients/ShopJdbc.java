// ShopJdbc - the sample shop's work through the PostgreSQL JDBC driver:
// server-side prepared statements (after prepareThreshold uses), a batch of
// inserts (pipelined by the driver), updates (one into an encrypted column),
// and reads. Prints one line per step; exits 1 with the SQLState on an error.
import java.sql.*;

public class ShopJdbc {
    public static void main(String[] args) throws Exception {
        try (Connection c = DriverManager.getConnection(args[0])) {
            c.setAutoCommit(false);
            try (PreparedStatement ps = c.prepareStatement(
                     "SELECT id, country FROM shop.customers WHERE id = ?")) {
                int found = 0;
                for (int i = 1; i <= 10; i++) { // the driver prepares it on the server after 5 uses
                    ps.setLong(1, i);
                    try (ResultSet rs = ps.executeQuery()) {
                        while (rs.next())
                            found++;
                    }
                }
                System.out.println("read " + found);
            }
            try (PreparedStatement ps = c.prepareStatement(
                     "INSERT INTO shop.orders (customer_id, total_cents, currency) VALUES (?, ?, 'EUR')")) {
                for (int i = 1; i <= 20; i++) {
                    ps.setLong(1, i);
                    ps.setLong(2, 1000 + i);
                    ps.addBatch();
                }
                int[] n = ps.executeBatch();
                System.out.println("inserted " + n.length);
            }
            try (PreparedStatement ps = c.prepareStatement(
                     "UPDATE shop.customers SET country = ? WHERE id = ?")) {
                ps.setString(1, "NL");
                ps.setLong(2, 3);
                System.out.println("updated " + ps.executeUpdate());
            }
            c.commit();
            try (PreparedStatement ps = c.prepareStatement( // the proxy encrypts the value
                     "UPDATE shop.customers SET email = ? WHERE id = ?")) {
                ps.setString(1, "x@example.org");
                ps.setLong(2, 3);
                System.out.println("encrypted " + ps.executeUpdate());
                c.commit();
            }
        } catch (SQLException e) {
            System.out.println("error " + e.getSQLState() + " " + e.getMessage());
            System.exit(1);
        }
    }
}
