package tenmin.train.data;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

import javax.imageio.ImageIO;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import tenmin.core.InputException;
import tenmin.core.Reporter;
import tenmin.testing.LogLines;
import tenmin.train.Rng;

class DatasetTest {
    @TempDir
    Path root;


    private static void png(Path p, int w, int h) throws IOException {
        ImageIO.write(new BufferedImage(w, h, BufferedImage.TYPE_INT_RGB), "png", p.toFile());
    }

    @Test
    void scansKohyaLayoutWithCaptionsAndFallbacks() throws IOException {
        Path cat = Files.createDirectories(root.resolve("10_ohwx cat"));
        Path dog = Files.createDirectories(root.resolve("2_dog"));
        Files.createDirectories(root.resolve("misc"));                   // no repeats: warned, skipped
        png(root.resolve("loose.png"), 8, 8);                            // files at the top level are ignored
        png(cat.resolve("b.png"), 64, 32);
        png(cat.resolve("a.PNG"), 32, 64);
        png(cat.resolve("c_1_2_3_4.png"), 16, 16);                      // face-crop caption name: c.txt
        Files.writeString(cat.resolve("b.txt"), "  first line, tags \nsecond line\n");
        Files.writeString(cat.resolve("c.txt"), "face crop caption\rold Mac second line"); // a lone CR ends a line too
        Files.writeString(cat.resolve("notes.txt"), "not an image");
        Files.write(cat.resolve("broken.jpg"), new byte[] {1, 2, 3});    // broken: warned, skipped
        png(dog.resolve("d.png"), 40, 40);
        Files.write(dog.resolve("d.txt"), new byte[] {(byte) 0xC3, (byte) 0x28}); // invalid UTF-8: image skipped
        png(dog.resolve("e.png"), 40, 40);

        LogLines log = new LogLines();
        DreamBoothDataset ds = DreamBoothDataset.scan(root, ".txt", false, log);
        assertEquals(List.of("10_ohwx cat", "2_dog"), ds.subsets().stream().map(DreamBoothDataset.Subset::dirName).toList());
        List<String> names = ds.items().stream().map(i -> i.image().getFileName().toString()).toList();
        assertEquals(List.of("a.PNG", "b.png", "c_1_2_3_4.png", "e.png"), names);
        assertEquals("ohwx cat", ds.items().get(0).caption());          // class-token fallback
        assertEquals("first line, tags", ds.items().get(1).caption());
        assertEquals("face crop caption", ds.items().get(2).caption());
        assertEquals("dog", ds.items().get(3).caption());
        assertEquals(32, ds.items().get(0).width());
        assertEquals(64, ds.items().get(0).height());
        assertEquals(3 * 10 + 1 * 2, ds.numTrainImages());
        String all = String.join("\n", log.lines());
        assertTrue(all.contains("misc") && all.contains("broken.jpg") && all.contains("d.txt"), all);

        InputException strict = assertThrows(InputException.class, () -> DreamBoothDataset.scan(root, ".txt", true, Reporter.SILENT));
        assertTrue(strict.getMessage().contains("--strict"), strict.getMessage());
        assertThrows(InputException.class, () -> DreamBoothDataset.scan(root.resolve("misc"), ".txt", false, Reporter.SILENT));
    }

    /**
     * {@code --reg_data_dir}: the regularisation images join in order with their folder's repeats until they reach
     * the training images × repeats (12 here), then each gains one draw per round (the reference's
     * DreamBoothDataset); too many: the rest are left out, with a warning.
     */
    @Test
    void regularisationImagesAreBalancedAgainstTheTrainingImages() throws IOException {
        Path train = Files.createDirectories(root.resolve("train/3_ohwx"));
        for (int i = 0; i < 4; i++) {
            png(train.resolve("t" + i + ".png"), 16, 16);
        }
        Path few = Files.createDirectories(root.resolve("few/1_woman"));
        for (int i = 0; i < 5; i++) {
            png(few.resolve("r" + i + ".png"), 16, 16);
        }
        Files.writeString(few.resolve("r0.txt"), "a photo of a woman");
        DreamBoothDataset ds = DreamBoothDataset.scan(root.resolve("train"), root.resolve("few"), ".txt", CaptionOptions.NONE, false,
                Reporter.SILENT);
        assertEquals(12, ds.numTrainImages());
        assertEquals(5, ds.numRegImages());
        List<DreamBoothDataset.Item> reg = ds.items().subList(4, 9);
        // 5 × 1 = 5; +1 each: 10; +1 for the first two: 12
        assertEquals(List.of(3, 3, 2, 2, 2), reg.stream().map(DreamBoothDataset.Item::repeats).toList());
        assertTrue(reg.stream().allMatch(DreamBoothDataset.Item::reg));
        assertTrue(ds.items().subList(0, 4).stream().noneMatch(DreamBoothDataset.Item::reg));
        assertEquals("a photo of a woman", reg.get(0).caption());
        assertEquals("woman", reg.get(1).caption());                     // the folder's class tokens
        assertEquals(List.of(false, true), ds.subsets().stream().map(DreamBoothDataset.Subset::reg).toList());
        // the bucket entries hold every training image 3 times and the regularisation images as balanced
        BucketPlan plan = BucketPlan.of(ds, 16, 16, false, 16, 16, 16, false);
        assertEquals(24, plan.entries().get(0).length);

        Path many = Files.createDirectories(root.resolve("many/2_woman"));
        for (int i = 0; i < 10; i++) {
            png(many.resolve("r" + i + ".png"), 16, 16);
        }
        LogLines log = new LogLines();
        DreamBoothDataset cut = DreamBoothDataset.scan(root.resolve("train"), root.resolve("many"), ".txt", CaptionOptions.NONE, false,
                log);
        assertEquals(20, cut.numRegImages());
        List<DreamBoothDataset.Item> used = cut.items().subList(4, cut.items().size());
        assertEquals(List.of(2, 2, 2, 2, 2, 2), used.stream().map(DreamBoothDataset.Item::repeats).toList());
        assertEquals(1, log.count("WARNING", "4 of 10 regularisation images are not used"), String.join("\n", log.lines()));

        Path one = Files.createDirectories(root.resolve("one/5_x"));
        png(one.resolve("r.png"), 16, 16);
        DreamBoothDataset single = DreamBoothDataset.scan(root.resolve("train"), root.resolve("one"), ".txt", CaptionOptions.NONE, false,
                Reporter.SILENT);
        assertEquals(12, single.items().get(4).repeats());               // 5, then one more per round
        assertThrows(InputException.class, () -> DreamBoothDataset.scan(root.resolve("train"), root.resolve("nope"),
                ".txt", CaptionOptions.NONE, false, Reporter.SILENT));
    }

    @Test
    void bucketPlanRepeatsEntriesAndCountsLikeKohya() throws IOException {
        Path a = Files.createDirectories(root.resolve("3_a"));
        Path b = Files.createDirectories(root.resolve("1_b"));
        png(a.resolve("wide.png"), 200, 100);   // AR 2
        png(a.resolve("square.png"), 64, 64);
        png(b.resolve("square2.png"), 100, 100);
        DreamBoothDataset ds = DreamBoothDataset.scan(root, ".txt", false, Reporter.SILENT);
        BucketPlan plan = BucketPlan.of(ds, 1024, 1024, true, 256, 2048, 32, false);
        assertEquals(81, plan.buckets().size());
        Map<Buckets.Reso, Integer> counts = plan.counts();
        assertEquals(1 + 3, counts.get(new Buckets.Reso(1024, 1024)));   // square2 once, square three times
        assertEquals(3, counts.get(new Buckets.Reso(1440, 704)));       // wide three times
        // |1440/704 - 2| over three images
        assertEquals(Math.abs(1440.0 / 704 - 2) / 3, plan.meanArError(), 1e-12);
        assertEquals(2, plan.nonEmptyEntries().size());
        BucketPlan single = BucketPlan.of(ds, 512, 512, false, 256, 2048, 64, false);
        assertEquals(List.of(new Buckets.Reso(512, 512)), single.buckets());
        assertEquals(7, single.entries().get(0).length);
    }

    @Test
    void globMatchesListedExtensionsInEitherCaseSortedOnce() throws IOException {
        Path d = Files.createDirectories(root.resolve("1_x"));
        for (String n : List.of("b.JPG", "a.jpeg", "c.Png", "d.webp", "e.bmp", "f.gif", "g.txt")) {
            Files.write(d.resolve(n), new byte[0]);
        }
        List<String> got = DreamBoothDataset.globImages(d).stream().map(p -> p.getFileName().toString()).toList();
        assertEquals(List.of("a.jpeg", "b.JPG", "d.webp", "e.bmp"), got); // "c.Png": mixed case is not globbed
    }

    @Test
    void captionShufflingKeepsLeadingTokensAndAllTags() {
        Rng rng = new Rng(1);
        String cap = "ohwx, red hat,  smiling ,, outdoors";
        Set<String> seen = new HashSet<>();
        for (int i = 0; i < 50; i++) {
            String s = Captions.process(cap, null, null, true, 1, ",", rng);
            assertTrue(s.startsWith("ohwx, "), s);
            List<String> parts = new ArrayList<>(List.of(s.split(", ", -1)));
            java.util.Collections.sort(parts);
            assertEquals(List.of("", "ohwx", "outdoors", "red hat", "smiling"), parts);
            seen.add(s);
        }
        assertTrue(seen.size() > 5, "shuffles vary: " + seen);
        assertEquals("pre a, b post", Captions.process("a, b", "pre", "post", false, 0, ",", rng));
        assertEquals(Map.of("a", 2, "b c", 1), Captions.tagFrequency(List.of("A, b c", " a ,")));
    }

    /** kohya's keep_tokens_separator: front tags, movable tags, and after a second separator end tags. */
    @Test
    void keepTokensSeparatorPinsFrontAndEndTags() {
        CaptionOptions o = new CaptionOptions(null, null, true, 5, ",", "|||", null, 0, 0, 0);
        Set<String> seen = new HashSet<>();
        for (int i = 0; i < 60; i++) {
            String s = Captions.process("ohwx, woman ||| red hat, smiling,, outdoors ||| masterpiece, best", o, 1,
                    new Rng(i));
            assertTrue(s.startsWith("ohwx, woman, ") && s.endsWith(", masterpiece, best"), s);
            String middle = s.substring("ohwx, woman, ".length(), s.length() - ", masterpiece, best".length());
            List<String> parts = new ArrayList<>(List.of(middle.split(", ", -1)));
            java.util.Collections.sort(parts);
            assertEquals(List.of("outdoors", "red hat", "smiling"), parts, "empty tags dropped in this form");
            seen.add(middle);
        }
        assertEquals(6, seen.size(), "all orders of the three movable tags: " + seen);
        // one separator only: no end tags; absent separator: --keep_tokens applies
        assertTrue(Captions.process("a ||| b, c", o, 1, new Rng(1)).startsWith("a, "));
        CaptionOptions keep1 = new CaptionOptions(null, null, true, 1, ",", "|||", null, 0, 0, 0);
        assertTrue(Captions.process("a, b, c, d", keep1, 1, new Rng(3)).startsWith("a, "));
    }

    /** Options with only a token warm-up of {@code min} tags over {@code step} steps, keeping {@code keep} tags. */
    private static CaptionOptions warmup(boolean shuffle, int keep, String keepSeparator, int min, double step) {
        return new CaptionOptions(null, null, shuffle, keep, ",", keepSeparator, null, 0, 0, 0, false, min, step);
    }

    /**
     * kohya's token warm-up (process_caption): while step < T, the movable tags are cut to the first
     * ⌊step · ((n − min) / T)⌋ + min before shuffling; from T on all stay. Counts below worked out by hand.
     */
    @Test
    void tokenWarmupKeepsTheFirstTagsGrowingWithTheStep() {
        String caption = "keep, t0, t1, t2, t3, t4, t5, t6, t7, t8";       // 1 kept + 9 movable tags
        CaptionOptions o = warmup(false, 1, "", 1, 4);
        // n = 9, min = 1, T = 4: (9 - 1) / 4 = 2 per step -> 1, 3, 5, 7 tags at steps 0..3, all 9 from step 4
        String[] want = {"keep, t0", "keep, t0, t1, t2", "keep, t0, t1, t2, t3, t4", "keep, t0, t1, t2, t3, t4, t5, t6",
                caption, caption};
        for (int step = 0; step < want.length; step++) {
            assertEquals(want[step], Captions.process(caption, o, 1, step, 100, new Rng(step)), "step " + step);
        }
        // a rate that is not whole: n = 9, min = 2, T = 3: 7/3 per step -> 2, ⌊2.33⌋+2 = 4, ⌊4.67⌋+2 = 6, then 9
        CaptionOptions third = warmup(false, 1, "", 2, 3);
        int[] counts = {2, 4, 6, 9, 9};
        for (int step = 0; step < counts.length; step++) {
            assertEquals(1 + counts[step], Captions.process(caption, third, 1, step, 100, new Rng(1)).split(", ").length,
                    "step " + step);
        }
        assertEquals(List.of(2, 4, 6, 9), List.of(third.warmupTagCount(9, 0, 3), third.warmupTagCount(9, 1, 3),
                third.warmupTagCount(9, 2, 3), third.warmupTagCount(9, 3, 3)));
        // fewer movable tags than the minimum: all of them
        assertEquals("keep, t0, t1", Captions.process("keep, t0, t1", warmup(false, 1, "", 5, 10), 1, 3, 100, new Rng(1)));
        // min 0: the kept tags alone at step 0
        assertEquals("keep", Captions.process(caption, warmup(false, 1, "", 0, 4), 1, 0, 100, new Rng(1)));
    }

    /** The warm-up cuts before shuffling: a draw shuffles the first tags only; kept and end tags always stay. */
    @Test
    void tokenWarmupCutsBeforeShufflingAndKeepsPinnedTags() {
        String caption = "ohwx, woman, t0, t1, t2, t3, t4, t5";
        CaptionOptions o = warmup(true, 2, "", 1, 6);
        Set<String> orders = new HashSet<>();
        for (int i = 0; i < 50; i++) {
            // step 2: (6 - 1) / 6 · 2 = 1.67 -> 1 + 1 = 2 movable tags, always t0 and t1, in either order
            String s = Captions.process(caption, o, 1, 2, 100, new Rng(i));
            assertTrue(s.startsWith("ohwx, woman, "), s);
            assertEquals(List.of("ohwx", "t0", "t1", "woman"), sortedTags(s));
            orders.add(s);
        }
        assertEquals(2, orders.size(), "both orders of t0, t1: " + orders);
        // keep-tokens separator: front and end tags stay, the movable ones between them are cut
        CaptionOptions sep = warmup(true, 0, "|||", 1, 6);
        String s = Captions.process("ohwx ||| t0, t1, t2, t3, t4, t5 ||| best", sep, 1, 0, 100, new Rng(3));
        assertEquals("ohwx, t0, best", s);
        // caption dropout still empties the caption
        CaptionOptions dropped = new CaptionOptions(null, null, false, 0, ",", "", null, 1, 0, 0, false, 1, 6);
        assertEquals("", Captions.process(caption, dropped, 1, 0, 100, new Rng(1)));
    }

    /**
     * A warm-up step below 1 is a fraction of the run: T = ⌊fraction · max_train_steps⌋; a warm-up re-joins the tags
     * with ", " as kohya's tag branch does, also once it has ended, unless T comes out 0 (no warm-up).
     */
    @Test
    void tokenWarmupFractionOfTheRun() {
        String caption = "t0,t1,t2,t3,t4,t5,t6,t7,t8";                     // 9 movable tags
        CaptionOptions o = warmup(false, 0, "", 1, 0.25);
        assertEquals(2.0, o.warmupSteps(9), 0);                             // ⌊0.25 · 9⌋ = 2
        // T = 2: step 1 -> ⌊1 · 8 / 2⌋ + 1 = 5 tags; step 2 on: all, re-joined with ", "
        assertEquals("t0, t1, t2, t3, t4", Captions.process(caption, o, 1, 1, 9, new Rng(1)));
        assertEquals("t0, t1, t2, t3, t4, t5, t6, t7, t8", Captions.process(caption, o, 1, 2, 9, new Rng(1)));
        // a run of 3 steps: ⌊0.75⌋ = 0, no warm-up, the caption as written
        assertEquals(0.0, o.warmupSteps(3), 0);
        assertEquals(caption, Captions.process(caption, o, 1, 0, 3, new Rng(1)));
        // a step count from 1 on is kept as given, even when not whole
        assertEquals(2.5, warmup(false, 0, "", 1, 2.5).warmupSteps(9), 0);
        // a warm-up changes captions between draws: no text-encoder cache; the step-less call refuses it
        assertTrue(!o.sameEveryDraw());
        assertThrows(IllegalArgumentException.class, () -> Captions.process(caption, o, 1, new Rng(1)));
        assertThrows(IllegalArgumentException.class, () -> warmup(false, 0, "", -1, 2));
        assertThrows(IllegalArgumentException.class, () -> warmup(false, 0, "", 1, -0.5));
    }

    /** kohya's secondary_separator: tags joined by it move as one and become separate tags afterwards. */
    @Test
    void secondarySeparatorMovesTagsTogether() {
        CaptionOptions o = new CaptionOptions(null, null, true, 0, ",", "", ";;;", 0, 0, 0);
        for (int i = 0; i < 30; i++) {
            String s = Captions.process("x, red;;;hat, y", o, 1, new Rng(i));
            assertTrue(s.contains("red,hat"), s);
            assertEquals(List.of("hat", "red", "x", "y"), sortedTags(s));
        }
        // without shuffling the replacement still happens (kohya does it outside the shuffle branch)
        assertEquals("x, red,hat", Captions.process("x, red;;;hat", new CaptionOptions(null, null, false, 0, ",", "",
                ";;;", 0, 0, 0), 1, new Rng(1)));
    }

    /**
     * Caption dropout: a draw's caption is empty with the rate's chance, and every caption of every Nth (1-based)
     * epoch; tag dropout leaves each movable tag out with its chance, keeping the kept ones.
     */
    @Test
    void captionAndTagDropout() {
        CaptionOptions rate = new CaptionOptions("pre", null, false, 0, ",", "", null, 0.25, 0, 0);
        int empty = 0;
        int runs = 4000;
        Rng rng = new Rng(8);
        for (int i = 0; i < runs; i++) {
            String s = Captions.process("a, b", rate, 1, rng);
            if (s.isEmpty()) {
                empty++;
            } else {
                assertEquals("pre a, b", s);
            }
        }
        assertEquals(0.25, empty / (double) runs, 0.02);
        CaptionOptions every = new CaptionOptions(null, null, true, 0, ",", "", null, 0, 3, 0);
        for (int epoch = 1; epoch <= 9; epoch++) {
            String s = Captions.process("a, b", every, epoch, new Rng(epoch));
            assertEquals(epoch % 3 == 0, s.isEmpty(), "epoch " + epoch + ": '" + s + "'");
        }
        // tag dropout: kept tags always there, the others each with chance 1 - 0.3, even without shuffling
        CaptionOptions tags = new CaptionOptions(null, null, false, 1, ",", "", null, 0, 0, 0.3);
        int[] present = new int[3];
        for (int i = 0; i < runs; i++) {
            String s = Captions.process("keep, t0, t1, t2", tags, 1, rng);
            assertTrue(s.startsWith("keep"), s);
            for (int t = 0; t < 3; t++) {
                if (List.of(s.split(", ")).contains("t" + t)) {
                    present[t]++;
                }
            }
            assertTrue(s.matches("keep(, t0)?(, t1)?(, t2)?"), "order kept without shuffling: " + s);
        }
        for (int p : present) {
            assertEquals(0.7, p / (double) runs, 0.025);
        }
        // nothing enabled: no draws, the caption as written
        Rng untouched = new Rng(4);
        assertEquals("a,  b", Captions.process("a,  b", CaptionOptions.NONE, 2, untouched));
        assertEquals(new Rng(4).nextLong(), untouched.nextLong());
    }

    /**
     * kohya's wildcards: the caption file read whole (non-empty lines), one line per draw, each {@code {a|b}} one
     * choice, {@code {{}}} literal braces; without wildcards the first line only.
     */
    @Test
    void wildcardsPickALineAndAChoicePerDraw() throws IOException {
        Path dir = Files.createDirectories(root.resolve("1_x"));
        png(dir.resolve("a.png"), 8, 8);
        Files.writeString(dir.resolve("a.txt"), "a {red|blue} disc, {{literal}}\n\n  a {big|small} square  \n");
        CaptionOptions wild = new CaptionOptions(null, null, false, 0, ",", "", null, 0, 0, 0, true);
        String text = DreamBoothDataset.of(List.of(new DreamBoothDataset.SubsetSpec(dir, "1_x", 1, "x", false, ".txt",
                wild)), CaptionOptions.NONE, false, Reporter.SILENT, "none").items().getFirst().caption();
        assertEquals("a {red|blue} disc, {{literal}}\na {big|small} square", text);
        assertEquals("a {red|blue} disc, {{literal}}", DreamBoothDataset.readCaption(dir.resolve("a.png"), ".txt", "x",
                Reporter.SILENT));
        Set<String> seen = new HashSet<>();
        Rng rng = new Rng(3);
        for (int i = 0; i < 200; i++) {
            seen.add(Captions.process(text, wild, 1, rng));
        }
        assertEquals(Set.of("a red disc, {literal}", "a blue disc, {literal}", "a big square", "a small square"), seen);
        // wildcards and shuffling: the choice is made before the tags are split
        CaptionOptions both = new CaptionOptions(null, null, true, 0, ",", "", null, 0, 0, 0, true);
        for (int i = 0; i < 50; i++) {
            String s = Captions.process("{x|y}, z", both, 1, rng);
            assertTrue(s.equals("x, z") || s.equals("z, x") || s.equals("y, z") || s.equals("z, y"), s);
        }
        assertTrue(!wild.sameEveryDraw());
    }

    private static List<String> sortedTags(String caption) {
        List<String> parts = new ArrayList<>();
        for (String p : caption.split(",")) {
            parts.add(p.strip());
        }
        java.util.Collections.sort(parts);
        return parts;
    }

    @Test
    void epochPlanCoversEveryEntryInSingleBucketBatches() {
        List<int[]> buckets = List.of(new int[] {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, new int[] {11, 12, 13}, new int[] {14});
        EpochPlanner p = new EpochPlanner(buckets, 4, 2, 42);
        // ceil(11/4) + ceil(3/4) + ceil(1/4) = 3 + 1 + 1 = 5 micro-batches; ceil(5/2) = 3 optimizer steps
        assertEquals(5, p.microBatchesPerEpoch());
        assertEquals(3, p.stepsPerEpoch());
        assertEquals(27, p.epochsFor(80));
        assertEquals(30, p.stepsForEpochs(10));
        assertTrue(p.syncsAfter(1) && p.syncsAfter(3) && p.syncsAfter(4));
        assertTrue(!p.syncsAfter(0) && !p.syncsAfter(2));
        // optimizer steps before each micro-batch: by hand, then against the loop's count of syncs
        assertEquals(List.of(0L, 0L, 1L, 1L, 2L, 3L), List.of(p.stepsBefore(0, 0), p.stepsBefore(0, 1),
                p.stepsBefore(0, 2), p.stepsBefore(0, 3), p.stepsBefore(0, 4), p.stepsBefore(1, 0)));
        long synced = 0;
        for (int epoch = 0; epoch < 4; epoch++) {
            for (int i = 0; i < p.microBatchesPerEpoch(); i++) {
                assertEquals(synced, p.stepsBefore(epoch, i), "epoch " + epoch + " micro-batch " + i);
                synced += p.syncsAfter(i) ? 1 : 0;
            }
        }
        for (int epoch = 0; epoch < 3; epoch++) {
            List<EpochPlanner.MicroBatch> plan = p.plan(epoch);
            assertEquals(5, plan.size());
            Set<Integer> seen = new HashSet<>();
            for (EpochPlanner.MicroBatch mb : plan) {
                assertTrue(mb.entries().length <= 4);
                for (int e : mb.entries()) {
                    assertTrue(seen.add(e));
                    int finalE = e;
                    assertTrue(java.util.Arrays.stream(buckets.get(mb.bucket())).anyMatch(x -> x == finalE));
                }
            }
            assertEquals(15, seen.size());
        }
        // reproducible from the seed, different between epochs and seeds
        assertEquals(render(p.plan(1)), render(new EpochPlanner(buckets, 4, 2, 42).plan(1)));
        assertNotEquals(render(p.plan(1)), render(p.plan(2)));
        assertNotEquals(render(p.plan(1)), render(new EpochPlanner(buckets, 4, 2, 43).plan(1)));
        // per-draw generator: recomputable
        assertArrayEquals(p.drawRng(3, 7).state(), new EpochPlanner(buckets, 4, 2, 42).drawRng(3, 7).state());
        boolean[] f = EpochPlanner.flips(p.drawRng(0, 0), 1000, true);
        int n = 0;
        for (boolean b : f) {
            n += b ? 1 : 0;
        }
        assertEquals(500, n, 60);
        assertArrayEquals(new boolean[3], EpochPlanner.flips(p.drawRng(0, 0), 3, false));
    }

    private static String render(List<EpochPlanner.MicroBatch> plan) {
        StringBuilder sb = new StringBuilder();
        for (EpochPlanner.MicroBatch mb : plan) {
            sb.append(mb.bucket()).append(java.util.Arrays.toString(mb.entries()));
        }
        return sb.toString();
    }

    @Test
    void rngStateRestoresBitForBit() {
        Rng a = new Rng(99);
        for (int i = 0; i < 5; i++) {
            a.nextGaussian();
        }
        long[] s = a.state();
        Rng b = Rng.fromState(s);
        for (int i = 0; i < 100; i++) {
            assertEquals(Double.doubleToRawLongBits(a.nextGaussian()), Double.doubleToRawLongBits(b.nextGaussian()));
            assertEquals(a.nextLong(), b.nextLong());
        }
    }

    @Test
    void meanArErrorSumsLikeNumpyMean() {
        // ss_bucket_info's mean_img_ar_error is np.mean(np.abs(errors)) in the reference; numpy sums float64
        // pairwise. Expected: numpy 2.4 on these 200 values; a plain left-to-right sum gives 0.2612371134020619.
        List<Buckets.Assignment> as = new ArrayList<>();
        for (int i = 0; i < 200; i++) {
            as.add(new Buckets.Assignment(new Buckets.Reso(1024, 1024), 1024, 1024, ((i * 37) % 101) / 97.0 - 0.5));
        }
        BucketPlan plan = new BucketPlan(List.of(new Buckets.Reso(1024, 1024)), as, List.of(new int[0]));
        assertEquals(0.26123711340206185, plan.meanArError(), 0.0);
        assertEquals(0.2789232531500573, new BucketPlan(plan.buckets(), as.subList(0, 9), plan.entries()).meanArError(),
                0.0);
    }
}
