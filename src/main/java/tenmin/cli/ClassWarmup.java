package tenmin.cli;

import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.Enumeration;
import java.util.SplittableRandom;
import java.util.jar.JarEntry;
import java.util.jar.JarFile;
import java.util.stream.Stream;

import tenmin.formats.SafetensorsWriter;
import tenmin.formats.StDType;
import tenmin.lora.SdxlKeyMap;

/**
 * Loads (without initialising) every class of the jar it runs from, then resizes a tiny generated LoRA, then
 * exits: the launcher runs it once after each build with {@code -XX:ArchiveClassesAtExit}, so the
 * class-data-sharing archive holds every class tenmin may need, whichever command runs first. (With the archive
 * written at the exit of the first ordinary command instead, {@code tenmin chop} after a {@code tenmin --version}
 * loaded Jackson and its own classes from the jar again: 0.8 s instead of about 0.3 s.) The resize puts into the
 * archive what only running code creates: the JDK's method-handle forms and lambda classes of picocli, OpenBLAS's
 * downcalls and the Vector API (about 120 classes a cold {@code tenmin resize} otherwise generates, 0.1 s of its
 * CPU time). Classes that cannot be loaded here (an optional dependency of a library that is absent) are
 * skipped; a failing resize only leaves its classes out.
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
        String resized = resizeTinyLora();
        if (args.length > 0 && args[0].equals("--report")) {
            System.out.println(loaded + " classes loaded, " + skipped + " skipped; tiny resize: " + resized);
        }
    }

    /**
     * Runs {@code tenmin resize} as a user would on a checkpoint and LoCon of a few tiny SDXL-named weights (a
     * 3x3 conv, a linear layer, text encoder 2's fused q/k/v) in a temporary folder, then deletes it.
     *
     * @return "ok", or why it failed
     */
    static String resizeTinyLora() {
        Path dir = null;
        try {
            dir = Files.createTempDirectory("tenmin-warmup");
            SplittableRandom rnd = new SplittableRandom(20241125);
            SafetensorsWriter ckpt = new SafetensorsWriter();
            SafetensorsWriter lora = new SafetensorsWriter();
            String unet = SdxlKeyMap.UNET_PREFIX;
            String te2 = SdxlKeyMap.TE2_PREFIX + "transformer.resblocks.0.attn.in_proj_weight";
            ckpt.addFloats(unet + "input_blocks.1.0.in_layers.2.weight", StDType.F16, new long[] {16, 16, 3, 3},
                    random(rnd, 16 * 16 * 9));
            ckpt.addFloats(unet + "input_blocks.4.1.proj_in.weight", StDType.F16, new long[] {16, 16}, random(rnd, 256));
            ckpt.addFloats(te2, StDType.F16, new long[] {48, 16}, random(rnd, 48 * 16));
            addModule(lora, rnd, "lora_unet_input_blocks_1_0_in_layers_2", new long[] {4, 16, 3, 3}, new long[] {16, 4, 1, 1});
            addModule(lora, rnd, "lora_unet_input_blocks_4_1_proj_in", new long[] {4, 16}, new long[] {16, 4});
            for (String qkv : new String[] {"q", "k", "v"}) {
                addModule(lora, rnd, "lora_te2_text_model_encoder_layers_0_self_attn_" + qkv + "_proj",
                        new long[] {4, 16}, new long[] {16, 4});
            }
            Path ckptFile = dir.resolve("ckpt.safetensors");
            Path loraFile = dir.resolve("lora.safetensors");
            ckpt.write(ckptFile);
            lora.write(loraFile);
            PrintStream quiet = new PrintStream(OutputStream.nullOutputStream());
            int code = Main.run(new String[] {"resize", "--no-norms-cache", "-o", dir.resolve("out").toString(), "-r",
                    "fro_ckpt=1,thr=-3.55", ckptFile.toString(), loraFile.toString()}, quiet, quiet);
            return code == 0 ? "ok" : "exit code " + code;
        } catch (IOException | RuntimeException e) {
            return e.toString();
        } finally {
            if (dir != null) {
                deleteTree(dir);
            }
        }
    }

    private static void addModule(SafetensorsWriter lora, SplittableRandom rnd, String name, long[] down, long[] up) {
        lora.addFloats(name + ".lora_down.weight", StDType.F16, down, random(rnd, numel(down)));
        lora.addFloats(name + ".lora_up.weight", StDType.F16, up, random(rnd, numel(up)));
        lora.addFloats(name + ".alpha", StDType.F16, new long[0], new float[] {2});
    }

    private static int numel(long[] shape) {
        int n = 1;
        for (long d : shape) {
            n *= (int) d;
        }
        return n;
    }

    private static float[] random(SplittableRandom rnd, int n) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = (float) (rnd.nextDouble() - 0.5);
        }
        return v;
    }

    private static void deleteTree(Path dir) {
        try (Stream<Path> files = Files.walk(dir)) {
            files.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        } catch (IOException | UncheckedIOException e) {
            // a temporary folder left behind is harmless
        }
    }
}
