package tenmin.engine.blas;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

/** Where shared libraries are found: the dynamic linker's cache, and the folder the build unpacks into. */
public final class NativeLibraries {
    /** System property naming the folder where the build unpacked Maven Central's native libraries. */
    public static final String CACHE_PROPERTY = "tenmin.libtorch.cache";
    /**
     * The build's default unpack folder, relative to the user's home (see pom.xml): OpenBLAS always, the CPU
     * libtorch when the tests have run.
     */
    public static final String DEFAULT_CACHE = ".cache/tenmin/libtorch-cpu-2.10.0-1.5.13";

    private NativeLibraries() {
    }

    /** The build's unpack folder: the system property {@value #CACHE_PROPERTY}, else {@value #DEFAULT_CACHE}. */
    public static Path buildCache() {
        String prop = System.getProperty(CACHE_PROPERTY);
        return prop != null && !prop.isBlank() ? Path.of(prop)
                : Path.of(System.getProperty("user.home")).resolve(DEFAULT_CACHE);
    }

    /** The path of {@code soname} in the dynamic linker's cache ({@code ldconfig -p}), or null. */
    public static Path systemLibrary(String soname) {
        for (String ldconfig : new String[] {"/sbin/ldconfig", "/usr/sbin/ldconfig", "ldconfig"}) {
            Process p;
            try {
                p = new ProcessBuilder(ldconfig, "-p").redirectErrorStream(true).start();
            } catch (IOException e) {
                continue;
            }
            try (InputStream in = p.getInputStream()) {
                String out = new String(in.readAllBytes(), StandardCharsets.UTF_8);
                p.waitFor(10, TimeUnit.SECONDS);
                for (String line : out.split("\n")) {
                    String t = line.trim();
                    int arrow = t.indexOf("=>");
                    if (t.startsWith(soname + " ") && t.contains("x86-64") && arrow > 0) {
                        Path path = Path.of(t.substring(arrow + 2).trim());
                        if (Files.isRegularFile(path)) {
                            return path;
                        }
                    }
                }
                return null;
            } catch (IOException e) {
                return null;
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return null;
            }
        }
        return null;
    }
}
