package tenmin.train.data;

import java.util.ArrayList;
import java.util.List;

import tenmin.train.Rng;

/**
 * The order of training (trainer-spec §3.5, §7.2): every bucket's entries (images × repeats) are
 * shuffled and cut into micro-batches of its batch size (the last may be smaller; with several datasets, each bucket
 * has its dataset's batch size), and the list of
 * micro-batches is shuffled — both freshly per epoch from a generator derived from (seed, epoch), so any
 * epoch's order can be recomputed on resume without replaying earlier ones. Per-draw randomness (flips,
 * caption shuffles) comes from {@link #drawRng}, derived from (seed, epoch, micro-batch index).
 *
 * <p>Step counting follows accelerate's accumulation: an optimizer step happens after every
 * {@code accum}-th micro-batch of an epoch and after the epoch's last one (a forced sync of a partial
 * window), so steps per epoch = ⌈micro-batches / accum⌉.
 */
public final class EpochPlanner {
    private static final long ORDER_KEY = 0x4F52444552L; // "ORDER"
    private static final long DRAW_KEY = 0x44524157L;    // "DRAW"

    /** One micro-batch: its bucket and the dataset entries in it. */
    public record MicroBatch(int bucket, int[] entries) {
    }

    private final List<int[]> buckets;
    private final int[] batchSizes;        // per bucket
    private final int accum;
    private final long seed;

    /**
     * @param buckets   per bucket, the dataset entry indices in it (an image appears once per repeat)
     * @param batchSize images per micro-batch
     * @param accum     micro-batches per optimizer step
     * @param seed      the run's seed
     */
    public EpochPlanner(List<int[]> buckets, int batchSize, int accum, long seed) {
        this(buckets, sameSize(buckets.size(), batchSize), accum, seed);
    }

    /**
     * @param buckets    per bucket, the dataset entry indices in it (an image appears once per repeat)
     * @param batchSizes per bucket, images per micro-batch (its dataset's batch size)
     * @param accum      micro-batches per optimizer step
     * @param seed       the run's seed
     */
    public EpochPlanner(List<int[]> buckets, int[] batchSizes, int accum, long seed) {
        if (batchSizes.length != buckets.size()) {
            throw new IllegalArgumentException(batchSizes.length + " batch sizes for " + buckets.size() + " buckets");
        }
        if (accum < 1 || java.util.Arrays.stream(batchSizes).anyMatch(b -> b < 1)) {
            throw new IllegalArgumentException("batch size and accumulation must be positive");
        }
        List<int[]> copy = new ArrayList<>();
        for (int[] b : buckets) {
            copy.add(b.clone());
        }
        this.buckets = copy;
        this.batchSizes = batchSizes.clone();
        this.accum = accum;
        this.seed = seed;
    }

    private static int[] sameSize(int n, int batchSize) {
        int[] out = new int[n];
        java.util.Arrays.fill(out, batchSize);
        if (batchSize < 1) {
            throw new IllegalArgumentException("batch size and accumulation must be positive");
        }
        return out;
    }

    /** Micro-batches per epoch: Σ over buckets of ⌈entries / the bucket's batch size⌉. */
    public int microBatchesPerEpoch() {
        int n = 0;
        for (int b = 0; b < buckets.size(); b++) {
            n += (buckets.get(b).length + batchSizes[b] - 1) / batchSizes[b];
        }
        return n;
    }

    /** Images per micro-batch of bucket {@code bucket}. */
    public int batchSize(int bucket) {
        return batchSizes[bucket];
    }

    /** Optimizer steps per epoch: ⌈micro-batches / accum⌉. */
    public int stepsPerEpoch() {
        return (microBatchesPerEpoch() + accum - 1) / accum;
    }

    /** Epochs needed for {@code maxSteps} optimizer steps. */
    public int epochsFor(long maxSteps) {
        return (int) ((maxSteps + stepsPerEpoch() - 1) / stepsPerEpoch());
    }

    /** Optimizer steps of a run limited by epochs ({@code --max_train_epochs}). */
    public long stepsForEpochs(int epochs) {
        return (long) epochs * stepsPerEpoch();
    }

    /** Whether the optimizer steps after micro-batch {@code index} (0-based within its epoch). */
    public boolean syncsAfter(int index) {
        return (index + 1) % accum == 0 || index == microBatchesPerEpoch() - 1;
    }

    /**
     * The optimizer steps taken before micro-batch {@code index} (0-based within its epoch) of {@code epoch}
     * (0-based): every epoch before it has {@link #stepsPerEpoch} and this one ⌊index / accum⌋ so far, the same for
     * each micro-batch of an accumulation window (the reference's {@code global_step} when the micro-batch starts).
     */
    public long stepsBefore(int epoch, int index) {
        return (long) epoch * stepsPerEpoch() + index / accum;
    }

    /** The micro-batches of {@code epoch} (0-based) in training order. */
    public List<MicroBatch> plan(int epoch) {
        Rng rng = Rng.derive(seed, ORDER_KEY, epoch);
        List<MicroBatch> batches = new ArrayList<>();
        for (int b = 0; b < buckets.size(); b++) {
            int[] entries = buckets.get(b).clone();
            int batchSize = batchSizes[b];
            rng.shuffle(entries);
            for (int from = 0; from < entries.length; from += batchSize) {
                int to = Math.min(entries.length, from + batchSize);
                batches.add(new MicroBatch(b, java.util.Arrays.copyOfRange(entries, from, to)));
            }
        }
        rng.shuffle(batches);
        return batches;
    }

    /** The generator for the per-draw choices of micro-batch {@code index} of {@code epoch}. */
    public Rng drawRng(int epoch, int index) {
        return Rng.derive(seed, DRAW_KEY, epoch, index);
    }

    /** kohya's flip rule: each image of a draw is flipped with probability ½. */
    public static boolean[] flips(Rng rng, int n, boolean flipAug) {
        boolean[] f = new boolean[n];
        if (flipAug) {
            for (int i = 0; i < n; i++) {
                f[i] = rng.nextDouble() < 0.5;
            }
        }
        return f;
    }
}
