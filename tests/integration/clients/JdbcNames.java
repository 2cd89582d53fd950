// JdbcNames - reads customers' names 1..N through one PreparedStatement,
// which the JDBC driver prepares on the server after five uses and then
// executes without describing it again. Prints one name per line.
import java.sql.*;

public class JdbcNames {
    public static void main(String[] args) throws Exception {
        int n = Integer.parseInt(args[1]);
        try (Connection c = DriverManager.getConnection(args[0]);
             PreparedStatement ps = c.prepareStatement("SELECT name FROM shop.customers WHERE id = ?")) {
            for (int i = 1; i <= n; i++) {
                ps.setLong(1, i);
                try (ResultSet rs = ps.executeQuery()) {
                    while (rs.next())
                        System.out.println(rs.getString(1));
                }
            }
        } catch (SQLException e) {
            System.out.println("error " + e.getSQLState());
            System.exit(1);
        }
    }
}
