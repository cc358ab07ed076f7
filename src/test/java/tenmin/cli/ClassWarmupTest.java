package tenmin.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.lang.reflect.Method;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import org.junit.jupiter.api.Test;

/**
 * What the launcher relies on to start {@code tenmin resize} quickly: the class-data warm-up's tiny resize runs,
 * and the compiler directives file is valid and covers resize's kernels.
 */
class ClassWarmupTest {
    private static final Path DIRECTIVES = Path.of("scripts", "jvm", "resize-jit.json");

    @Test
    void tinyResizeOfTheWarmupRuns() {
        assertEquals("ok", ClassWarmup.resizeTinyLora());
    }

    @Test
    void theJvmAcceptsTheDirectives() throws IOException, InterruptedException {
        assertTrue(Files.isRegularFile(DIRECTIVES), DIRECTIVES + " is missing (the launcher passes it for resize)");
        Path java = Path.of(System.getProperty("java.home"), "bin", "java");
        Process p = new ProcessBuilder(java.toString(), "-XX:+UnlockDiagnosticVMOptions", "-XX:+DisplayVMOutputToStderr",
                "-XX:CompilerDirectivesFile=" + DIRECTIVES.toAbsolutePath(), "-version").redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(60, TimeUnit.SECONDS));
        assertEquals(0, p.exitValue(), out);
        assertTrue(out.contains("2 compiler directives added"), out);
        assertFalse(out.contains("error") || out.contains("Error"), out);
    }

    @Test
    void theDirectivesKeepC2ForResizeKernels() throws IOException, ReflectiveOperationException {
        List<String> patterns = keptPatterns();
        // the code a resize spends its time in; a rename or a move out of the listed classes shows up here
        String[][] hot = {{"tenmin.tools.resize.Kernels", "sumSquares"}, {"tenmin.tools.resize.Resize", "readFloats"},
                {"tenmin.formats.Half", "f16ToF32"}, {"tenmin.formats.Half", "f32ToF16"},
                {"tenmin.formats.Half", "f16ToF64"}, {"tenmin.engine.blas.OpenBlas", "multiply"},
                {"tenmin.formats.SafetensorsFile", "convertToFloats"}};
        for (String[] h : hot) {
            Class<?> c = Class.forName(h[0]);
            boolean exists = false;
            for (Method m : c.getDeclaredMethods()) {
                exists |= m.getName().equals(h[1]);
            }
            assertTrue(exists, h[0] + "." + h[1] + " no longer exists: update the test and " + DIRECTIVES);
            assertTrue(matchesAny(patterns, h[0], h[1]), h[0] + "." + h[1] + " is not kept for C2 in " + DIRECTIVES);
        }
        for (String pattern : patterns) {
            if (!pattern.startsWith("tenmin/")) {
                continue;
            }
            String cls = pattern.substring(0, pattern.lastIndexOf('.'));
            if (cls.endsWith("*")) {
                String pkg = cls.substring(0, cls.length() - 1);
                assertTrue(ClassLoader.getSystemResource(pkg) != null || getClass().getClassLoader().getResource(pkg) != null,
                        "no package " + pkg + " for " + pattern);
            } else {
                Class.forName(cls.replace('/', '.'));
            }
        }
        assertFalse(matchesAny(patterns, "tenmin.formats.JsonTree$FastScanner", "string"),
                "start-up code is left to C1");
    }

    /** The match patterns of the directive that keeps C2 (the first one). */
    private static List<String> keptPatterns() throws IOException {
        String text = Files.readString(DIRECTIVES);
        int first = text.indexOf("match:");
        int end = text.indexOf(']', first);
        List<String> out = new ArrayList<>();
        Matcher m = Pattern.compile("\"([^\"]+)\"").matcher(text.substring(first, end));
        while (m.find()) {
            out.add(m.group(1));
        }
        assertTrue(text.indexOf("Exclude: false") > 0 && text.indexOf("Exclude: false") < text.indexOf("Exclude: true"),
                "the first directive keeps C2, the last excludes it");
        return out;
    }

    private static boolean matchesAny(List<String> patterns, String className, String method) {
        String cls = className.replace('.', '/');
        for (String p : patterns) {
            int dot = p.lastIndexOf('.');
            String cp = p.substring(0, dot);
            String mp = p.substring(dot + 1);
            boolean classOk = cp.endsWith("*") ? cls.startsWith(cp.substring(0, cp.length() - 1)) : cls.equals(cp);
            boolean methodOk = mp.endsWith("*") ? method.startsWith(mp.substring(0, mp.length() - 1)) : method.equals(mp);
            if (classOk && methodOk) {
                return true;
            }
        }
        return false;
    }
}
