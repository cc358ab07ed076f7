package tenmin.cli;

import java.io.IOException;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Enumeration;
import java.util.jar.JarEntry;
import java.util.jar.JarFile;

/**
 * Loads (without initialising) every class of the jar it runs from, then exits: the launcher runs it once
 * after each build with {@code -XX:ArchiveClassesAtExit}, so the class-data-sharing archive holds every class
 * tenmin may need, whichever command runs first. (With the archive written at the exit of the first ordinary
 * command instead, {@code tenmin chop} after a {@code tenmin --version} loaded Jackson and its own classes from
 * the jar again: 0.8 s instead of about 0.3 s.) Classes that cannot be loaded here (an optional dependency of
 * a library that is absent) are skipped.
 */
public final class ClassWarmup {
    private ClassWarmup() {
    }

    public static void main(String[] args) throws IOException, URISyntaxException {
        Path jar = Path.of(ClassWarmup.class.getProtectionDomain().getCodeSource().getLocation().toURI());
        if (!Files.isRegularFile(jar)) {
            System.err.println("tenmin: class warm-up runs from the jar only (" + jar + ")");
            return;
        }
        ClassLoader loader = ClassWarmup.class.getClassLoader();
        int loaded = 0;
        int skipped = 0;
        try (JarFile jf = new JarFile(jar.toFile())) {
            for (Enumeration<JarEntry> e = jf.entries(); e.hasMoreElements(); ) {
                String name = e.nextElement().getName();
                if (!name.endsWith(".class") || name.startsWith("META-INF/") || name.endsWith("module-info.class")) {
                    continue;
                }
                try {
                    Class.forName(name.substring(0, name.length() - ".class".length()).replace('/', '.'), false, loader);
                    loaded++;
                } catch (LinkageError | ClassNotFoundException ex) {
                    skipped++;
                }
            }
        }
        if (args.length > 0 && args[0].equals("--report")) {
            System.out.println(loaded + " classes loaded, " + skipped + " skipped");
        }
    }
}
