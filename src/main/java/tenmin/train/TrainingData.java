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
 *
 * <p>A {@code --dataset_config} with several {@code [[datasets]]} gives several datasets (kohya's
 * {@code DatasetGroup}): each is scanned, bucketed and batched on its own, with its own resolution, buckets and batch
 * size, and balances its own regularisation images; here they are concatenated — items, subsets and buckets in
 * dataset order, two datasets never sharing a bucket — so a micro-batch holds images of one dataset and one bucket,
 * and an epoch is one shuffle of all datasets' micro-batches.
 */
public final class TrainingData {
    private final DreamBoothDataset dataset;           // every dataset's items, concatenated
    private final BucketPlan plan;                     // every dataset's buckets, concatenated
    private final List<DreamBoothDataset> datasets;    // per dataset, as scanned
    private final List<BucketPlan> plans;              // per dataset, its own items' indices
    private final int[] firstItems;                    // per dataset, the index of its first item in dataset
    private final List<Buckets.Reso> plannedBuckets;   // the planner's bucket index → bucket
    private final int[] plannedDatasets;               // the planner's bucket index → dataset
    private final EpochPlanner planner;

    private TrainingData(List<DreamBoothDataset> datasets, List<BucketPlan> plans, List<TrainConfig.Dataset> specs,
                         int accum, long seed) {
        this.datasets = List.copyOf(datasets);
        this.plans = List.copyOf(plans);
        this.dataset = datasets.size() == 1 ? datasets.get(0) : DreamBoothDataset.concat(datasets);
        this.plan = plans.size() == 1 ? plans.get(0) : BucketPlan.concat(plans);
        this.firstItems = new int[datasets.size()];
        List<Buckets.Reso> used = new ArrayList<>();
        List<int[]> entries = new ArrayList<>();
        List<Integer> owners = new ArrayList<>();
        List<Integer> batchSizes = new ArrayList<>();
        int bucket = 0;
        for (int d = 0; d < plans.size(); d++) {
            firstItems[d] = d == 0 ? 0 : firstItems[d - 1] + datasets.get(d - 1).items().size();
            BucketPlan p = plans.get(d);
            for (int b = 0; b < p.buckets().size(); b++, bucket++) {
                if (p.entries().get(b).length > 0) {
                    used.add(p.buckets().get(b));
                    entries.add(plan.entries().get(bucket));
                    owners.add(d);
                    batchSizes.add(specs.get(d).batchSize());
                }
            }
        }
        this.plannedBuckets = List.copyOf(used);
        this.plannedDatasets = owners.stream().mapToInt(Integer::intValue).toArray();
        this.planner = new EpochPlanner(entries, batchSizes.stream().mapToInt(Integer::intValue).toArray(), accum, seed);
    }

    /**
     * Scans {@code dataDir} (or the {@code --dataset_config}'s datasets) and places its images as {@code cfg} says.
     *
     * @param sideMultiple every bucket side must be a multiple of this (VAE factor × U-Net down-sampling: 32 on SDXL)
     * @throws InputException for a missing or empty dataset, or a bucket the U-Net cannot take
     */
    public static TrainingData prepare(TrainConfig cfg, Path dataDir, int sideMultiple, Reporter reporter) {
        TrainConfig.Data d = cfg.data();
        List<TrainConfig.Dataset> specs = cfg.datasets();
        List<DreamBoothDataset> datasets = new ArrayList<>();
        List<BucketPlan> plans = new ArrayList<>();
        for (int i = 0; i < specs.size(); i++) {
            TrainConfig.Dataset spec = specs.get(i);
            DreamBoothDataset ds = spec.subsets().isEmpty()
                    ? DreamBoothDataset.scan(dataDir, cfg.paths().regDataDir(), d.captionExtension(), d.captions(),
                            d.strict(), reporter)
                    : DreamBoothDataset.of(spec.subsets(), d.captions(), d.strict(), reporter, "--dataset_config: no"
                            + " training images found in " + (specs.size() == 1 ? "its" : "[[datasets]] " + (i + 1)
                            + "'s") + " subsets' image_dir folders");
            BucketPlan plan = BucketPlan.of(ds, spec.width(), spec.height(), spec.enableBucket(), spec.minBucketReso(),
                    spec.maxBucketReso(), spec.bucketResoSteps(), spec.bucketNoUpscale());
            for (int b = 0; b < plan.buckets().size(); b++) {
                Buckets.Reso r = plan.buckets().get(b);
                if (plan.entries().get(b).length > 0 && (r.width() % sideMultiple != 0 || r.height() % sideMultiple != 0)) {
                    throw new InputException((specs.size() == 1 ? "" : "[[datasets]] " + (i + 1) + ": ") + "bucket "
                            + r.width() + "x" + r.height() + ": sides must be multiples of " + sideMultiple + " for this"
                            + " model (use --bucket_reso_steps=" + sideMultiple + " or a multiple, and a --resolution"
                            + " that is one)");
                }
            }
            datasets.add(ds);
            plans.add(plan);
        }
        if (d.cacheLatentsToDisk()) {
            oneBucketPerCacheFile(datasets, plans);
        }
        return new TrainingData(datasets, plans, specs, cfg.loop().gradAccumSteps(), cfg.loop().seed());
    }

    /**
     * {@code --cache_latents_to_disk} keeps one {@code .npz} beside each image, of one bucket's shape: an image that
     * two datasets place in different buckets cannot be cached there (the reference would overwrite one dataset's
     * latents with the other's).
     */
    private static void oneBucketPerCacheFile(List<DreamBoothDataset> datasets, List<BucketPlan> plans) {
        Map<Path, Integer> firstDataset = new LinkedHashMap<>();
        Map<Path, Buckets.Reso> firstBucket = new LinkedHashMap<>();
        for (int d = 0; d < datasets.size(); d++) {
            List<DreamBoothDataset.Item> items = datasets.get(d).items();
            for (int i = 0; i < items.size(); i++) {
                Path image = items.get(i).image();
                Buckets.Reso bucket = plans.get(d).assignments().get(i).bucket();
                Buckets.Reso before = firstBucket.putIfAbsent(image, bucket);
                firstDataset.putIfAbsent(image, d);
                if (before != null && !before.equals(bucket)) {
                    throw new InputException("--cache_latents_to_disk: " + image + " is in [[datasets]] "
                            + (firstDataset.get(image) + 1) + " at " + before.width() + "x" + before.height()
                            + " and in [[datasets]] " + (d + 1) + " at " + bucket.width() + "x" + bucket.height()
                            + "; its one cache file holds one size (cache in memory with --cache_latents alone)");
                }
            }
        }
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

    /** Datasets of the run: the {@code [[datasets]]} of a {@code --dataset_config}, otherwise one. */
    public int datasetCount() {
        return datasets.size();
    }

    /** The dataset (0-based) of a planned micro-batch: all its images are of that dataset. */
    public int datasetOf(EpochPlanner.MicroBatch mb) {
        return plannedDatasets[mb.bucket()];
    }

    /** The dataset (0-based) image {@code item} belongs to. */
    public int datasetOfItem(int item) {
        int d = datasets.size() - 1;
        while (firstItems[d] > item) {
            d--;
        }
        return d;
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

    /** The dataset folders for {@code ss_dataset_dirs} and {@code ss_reg_dataset_dirs}: every dataset's, in order. */
    public List<TrainingMetadata.DatasetDir> datasetDirs() {
        return dirs(dataset);
    }

    private static List<TrainingMetadata.DatasetDir> dirs(DreamBoothDataset ds) {
        List<TrainingMetadata.DatasetDir> out = new ArrayList<>();
        for (DreamBoothDataset.Subset s : ds.subsets()) {
            out.add(new TrainingMetadata.DatasetDir(s.dirName(), s.repeats(), s.imageCount(), s.reg(), s.classTokens(),
                    s.captions()));
        }
        return out;
    }

    /**
     * {@code ss_tag_frequency}: per folder (regularisation folders too, as the reference's {@code set_tag_frequency};
     * folders of the same name share counts), tag → count over the raw captions of the images found. With several
     * datasets, a folder name's counts are those of the first dataset that has it (the reference's merge).
     */
    public Map<String, Map<String, Integer>> tagFrequency() {
        Map<String, Map<String, Integer>> out = new LinkedHashMap<>();
        for (DreamBoothDataset ds : datasets) {
            tagFrequency(ds).forEach(out::putIfAbsent);
        }
        return out;
    }

    private static Map<String, Map<String, Integer>> tagFrequency(DreamBoothDataset ds) {
        Map<String, List<String>> captions = new LinkedHashMap<>();
        for (DreamBoothDataset.Subset s : ds.subsets()) {
            captions.computeIfAbsent(s.dirName(), k -> new ArrayList<>());
        }
        for (DreamBoothDataset.Item it : ds.items()) {
            captions.get(ds.subsets().get(it.subset()).dirName()).add(it.caption());
        }
        Map<String, Map<String, Integer>> out = new LinkedHashMap<>();
        captions.forEach((dir, list) -> out.put(dir, Captions.tagFrequency(list)));
        return out;
    }

    /** {@code ss_bucket_info} of the first dataset, or null without buckets. */
    public String bucketInfo(TrainConfig cfg) {
        return bucketInfo(cfg.datasets().get(0), plans.get(0));
    }

    private static String bucketInfo(TrainConfig.Dataset spec, BucketPlan plan) {
        return spec.enableBucket()
                ? TrainingMetadata.bucketInfo(plan.buckets(), plan.counts(), plan.meanArError()) : null;
    }

    /** Per dataset, what {@code ss_datasets} records of it. */
    public List<TrainingMetadata.DatasetInfo> datasetInfos(TrainConfig cfg) {
        List<TrainConfig.Dataset> specs = cfg.datasets();
        List<TrainingMetadata.DatasetInfo> out = new ArrayList<>();
        for (int d = 0; d < datasets.size(); d++) {
            TrainConfig.Dataset spec = specs.get(d);
            DreamBoothDataset ds = datasets.get(d);
            out.add(new TrainingMetadata.DatasetInfo(spec.batchSize(), ds.numTrainImages(), ds.numRegImages(),
                    spec.width(), spec.height(), spec.enableBucket(), spec.minBucketReso(), spec.maxBucketReso(),
                    tagFrequency(ds), bucketInfo(spec, plans.get(d)), dirs(ds)));
        }
        return out;
    }
}
