package tenmin.train;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import tenmin.core.InputException;
import tenmin.core.Reporter;
import tenmin.train.data.BucketPlan;
import tenmin.train.data.Buckets;
import tenmin.train.data.Captions;
import tenmin.train.data.DreamBoothDataset;
import tenmin.train.data.EpochPlanner;
import tenmin.train.save.TrainingMetadata;

/**
 * The dataset of a run, placed and planned: the scanned {@code <repeats>_<name>} folders, every image's
 * bucket, and the seeded epoch plan of single-bucket micro-batches (trainer-spec §3).
 */
public final class TrainingData {
    private final DreamBoothDataset dataset;
    private final BucketPlan plan;
    private final List<Buckets.Reso> plannedBuckets;   // the planner's bucket index → bucket
    private final EpochPlanner planner;

    private TrainingData(DreamBoothDataset dataset, BucketPlan plan, EpochPlanner planner) {
        this.dataset = dataset;
        this.plan = plan;
        this.planner = planner;
        List<Buckets.Reso> used = new ArrayList<>();
        for (int b = 0; b < plan.buckets().size(); b++) {
            if (plan.entries().get(b).length > 0) {
                used.add(plan.buckets().get(b));
            }
        }
        this.plannedBuckets = List.copyOf(used);
    }

    /**
     * Scans {@code dataDir} and places its images as {@code cfg} says.
     *
     * @param sideMultiple every bucket side must be a multiple of this (VAE factor × U-Net down-sampling: 32 on SDXL)
     * @throws InputException for a missing or empty dataset, or a bucket the U-Net cannot take
     */
    public static TrainingData prepare(TrainConfig cfg, Path dataDir, int sideMultiple, Reporter reporter) {
        TrainConfig.Data d = cfg.data();
        DreamBoothDataset ds = d.subsets().isEmpty()
                ? DreamBoothDataset.scan(dataDir, cfg.paths().regDataDir(), d.captionExtension(), d.captions(), d.strict(),
                        reporter)
                : DreamBoothDataset.of(d.subsets(), d.captions(), d.strict(), reporter, "--dataset_config: no training images found in"
                        + " its subsets' image_dir folders");
        BucketPlan plan = BucketPlan.of(ds, d.width(), d.height(), d.enableBucket(), d.minBucketReso(),
                d.maxBucketReso(), d.bucketResoSteps(), d.bucketNoUpscale());
        for (int b = 0; b < plan.buckets().size(); b++) {
            Buckets.Reso r = plan.buckets().get(b);
            if (plan.entries().get(b).length > 0 && (r.width() % sideMultiple != 0 || r.height() % sideMultiple != 0)) {
                throw new InputException("bucket " + r.width() + "x" + r.height() + ": sides must be multiples of "
                        + sideMultiple + " for this model (use --bucket_reso_steps=" + sideMultiple + " or a multiple,"
                        + " and a --resolution that is one)");
            }
        }
        EpochPlanner planner = new EpochPlanner(plan.nonEmptyEntries(), cfg.loop().trainBatchSize(),
                cfg.loop().gradAccumSteps(), cfg.loop().seed());
        return new TrainingData(ds, plan, planner);
    }

    public DreamBoothDataset dataset() {
        return dataset;
    }

    public BucketPlan plan() {
        return plan;
    }

    public EpochPlanner planner() {
        return planner;
    }

    /** Images in the dataset (each once). */
    public int imageCount() {
        return dataset.items().size();
    }

    /** The bucket of a planned micro-batch. */
    public Buckets.Reso bucketOf(EpochPlanner.MicroBatch mb) {
        return plannedBuckets.get(mb.bucket());
    }

    /** Where image {@code item} goes. */
    public Buckets.Assignment assignment(int item) {
        return plan.assignments().get(item);
    }

    public DreamBoothDataset.Item item(int item) {
        return dataset.items().get(item);
    }

    /** Optimizer steps of the run: {@code --max_train_epochs} when given, else {@code --max_train_steps}. */
    public long maxSteps(TrainConfig cfg) {
        return cfg.loop().maxTrainEpochs() > 0 ? planner.stepsForEpochs(cfg.loop().maxTrainEpochs())
                : cfg.loop().maxTrainSteps();
    }

    /** The dataset folders for {@code ss_dataset_dirs} and {@code ss_reg_dataset_dirs}. */
    public List<TrainingMetadata.DatasetDir> datasetDirs() {
        List<TrainingMetadata.DatasetDir> out = new ArrayList<>();
        for (DreamBoothDataset.Subset s : dataset.subsets()) {
            out.add(new TrainingMetadata.DatasetDir(s.dirName(), s.repeats(), s.imageCount(), s.reg(), s.classTokens(),
                    s.captions()));
        }
        return out;
    }

    /**
     * {@code ss_tag_frequency}: per folder (regularisation folders too, as the reference's {@code set_tag_frequency};
     * folders of the same name share counts), tag → count over the raw captions of the images found.
     */
    public Map<String, Map<String, Integer>> tagFrequency() {
        Map<String, List<String>> captions = new LinkedHashMap<>();
        for (DreamBoothDataset.Subset s : dataset.subsets()) {
            captions.computeIfAbsent(s.dirName(), k -> new ArrayList<>());
        }
        for (DreamBoothDataset.Item it : dataset.items()) {
            captions.get(dataset.subsets().get(it.subset()).dirName()).add(it.caption());
        }
        Map<String, Map<String, Integer>> out = new LinkedHashMap<>();
        captions.forEach((dir, list) -> out.put(dir, Captions.tagFrequency(list)));
        return out;
    }

    /** {@code ss_bucket_info}, or null without buckets. */
    public String bucketInfo(TrainConfig cfg) {
        return cfg.data().enableBucket()
                ? TrainingMetadata.bucketInfo(plan.buckets(), plan.counts(), plan.meanArError()) : null;
    }
}
