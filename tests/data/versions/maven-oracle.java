// Differential-test oracle for regsweep's maven scheme: Maven's own ComparableVersion.
// Run in source-file mode with a maven-artifact jar on the class path:
//   java -cp /usr/share/java/maven3-artifact.jar tests/data/versions/maven-oracle.java < pairs
// Reads "A<TAB>B" lines (UTF-8) and prints one line per pair: -1, 0 or 1, the sign of
// new ComparableVersion(A).compareTo(new ComparableVersion(B)), or "E <message>" when the
// class throws. One JVM serves a whole batch, so thousands of pairs cost well under a second.
import java.io.BufferedReader;
import java.io.BufferedWriter;
import java.io.InputStreamReader;
import java.io.OutputStreamWriter;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import org.apache.maven.artifact.versioning.ComparableVersion;

public class MavenOracle {
    public static void main(String[] args) throws Exception {
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        PrintWriter out = new PrintWriter(new BufferedWriter(new OutputStreamWriter(System.out, StandardCharsets.UTF_8)));
        String line;
        while ((line = in.readLine()) != null) {
            int tab = line.indexOf('\t');
            try {
                ComparableVersion a = new ComparableVersion(line.substring(0, tab));
                ComparableVersion b = new ComparableVersion(line.substring(tab + 1));
                out.println(Integer.signum(a.compareTo(b)));
            } catch (RuntimeException e) {
                out.println("E " + e);
            }
        }
        out.flush();
    }
}
