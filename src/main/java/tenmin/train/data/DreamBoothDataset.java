package tenmin.train.data;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;
import java.util.TreeMap;
import java.util.TreeSet;

import javax.imageio.ImageIO;
import javax.imageio.ImageReader;
import javax.imageio.stream.ImageInputStream;

import tenmin.core.InputException;
import tenmin.core.Reporter;

/**
 * kohya's DreamBooth dataset layout (trainer-spec §3.1–3.2): the immediate sub-folders of the training
 * folder named {@code <repeats>_<class tokens>}; in each, the images (png, jpg, jpeg, webp, bmp, any case;
 * not recursive; sorted) and their captions.
 *
 * <p>Nothing drops silently: folders that do not follow the naming, images whose header cannot be read
 * and captions that cannot be read are reported with their path (WARNING) and skipped, or stop the scan
 * when {@code strict}.
 */
public final class DreamBoothDataset {
    /** Image extensions the reference globs (upper-case variants too). */
    public static final List<String> IMAGE_EXTENSIONS = List.of(".png", ".jpg", ".jpeg", ".webp", ".bmp");

    /**
     * One image folder, of training images or (from {@code --reg_data_dir}) regularisation ones: a
     * {@code <repeats>_<name>} folder, or a subset of a {@code --dataset_config}.
     *
     * @param captions the folder's own caption processing, or null: the run's
     * @param conditioningDir the folder of its loss masks ({@code conditioning_data_dir}, {@code --masked_loss}), or
     *                 null
     */
    public record Subset(String dirName, Path dir, int repeats, String classTokens, int imageCount, boolean reg,
                         CaptionOptions captions, Path conditioningDir) {
        /** A subset without loss masks. */
        public Subset(String dirName, Path dir, int repeats, String classTokens, int imageCount, boolean reg,
                      CaptionOptions captions) {
            this(dirName, dir, repeats, classTokens, imageCount, reg, captions, null);
        }
    }

    /**
     * A folder to scan: its images lie directly in {@code dir}.
     *
     * @param dirName          its name in the metadata (the folder's own name)
     * @param classTokens      the caption of an image without a caption file ("" for none)
     * @param captionExtension caption file extension, with its dot
     * @param captions         the folder's own caption processing, or null: the run's
     * @param conditioningDir  the folder of its loss masks ({@code conditioning_data_dir}), or null
     */
    public record SubsetSpec(Path dir, String dirName, int repeats, String classTokens, boolean reg,
                             String captionExtension, CaptionOptions captions, Path conditioningDir) {
        /** A folder without loss masks. */
        public SubsetSpec(Path dir, String dirName, int repeats, String classTokens, boolean reg,
                          String captionExtension, CaptionOptions captions) {
            this(dir, dirName, repeats, classTokens, reg, captionExtension, captions, null);
        }
    }

    /**
     * One image with its first-line caption (before per-draw processing) and how often an epoch draws it: its folder's
     * repeats, or for a regularisation image the count that balances them against the training images.
     */
    public record Item(Path image, int subset, String caption, int width, int height, int repeats, boolean reg) {
    }

    private final List<Subset> subsets;
    private final List<Item> items;

    private DreamBoothDataset(List<Subset> subsets, List<Item> items) {
        this.subsets = List.copyOf(subsets);
        this.items = List.copyOf(items);
    }

    public List<Subset> subsets() {
        return subsets;
    }

    public List<Item> items() {
        return items;
    }

    /**
     * Several datasets as one (kohya's {@code DatasetGroup}, a concatenation): their subsets and items in order, each
     * item's subset index moved past the subsets of the datasets before it. Each dataset's regularisation images stay
     * balanced against its own training images.
     */
    public static DreamBoothDataset concat(List<DreamBoothDataset> datasets) {
        List<Subset> subsets = new ArrayList<>();
        List<Item> items = new ArrayList<>();
        for (DreamBoothDataset d : datasets) {
            int offset = subsets.size();
            subsets.addAll(d.subsets);
            for (Item it : d.items) {
                items.add(new Item(it.image(), it.subset() + offset, it.caption(), it.width(), it.height(),
                        it.repeats(), it.reg()));
            }
        }
        return new DreamBoothDataset(subsets, items);
    }

    /** Training images × repeats ({@code ss_num_train_images}). */
    public int numTrainImages() {
        int n = 0;
        for (Item it : items) {
            n += it.reg() ? 0 : it.repeats();
        }
        return n;
    }

    /** Regularisation images × their folders' repeats, as found ({@code ss_num_reg_images}). */
    public int numRegImages() {
        int n = 0;
        for (Subset s : subsets) {
            n += s.reg() ? s.repeats() * s.imageCount() : 0;
        }
        return n;
    }

    /** Scans {@code root}; {@code captionExtension} includes its dot. */
    public static DreamBoothDataset scan(Path root, String captionExtension, boolean strict, Reporter reporter) {
        return scan(root, null, captionExtension, CaptionOptions.NONE, strict, reporter);
    }

    /**
     * Scans the training folder {@code root} and, when not null, the regularisation folder {@code regRoot} of the same
     * layout ({@code --reg_data_dir}, kohya's DreamBooth "prior preservation" images). As the reference's
     * {@code DreamBoothDataset}, the regularisation images are balanced against the training images × repeats: in
     * order, each joins with its folder's repeats until they add up to at least that many; if all joined and they
     * are still fewer, each gets one more draw per round until they are not. Images left out are reported.
     */
    public static DreamBoothDataset scan(Path root, Path regRoot, String captionExtension, CaptionOptions captions,
                                         boolean strict, Reporter reporter) {
        List<SubsetSpec> specs = new ArrayList<>(folders(root, false, captionExtension, strict, reporter));
        if (regRoot != null) {
            specs.addAll(folders(regRoot, true, captionExtension, strict, reporter));
        }
        return of(specs, captions, strict, reporter, root + ": no training images found (expected sub-folders named"
                + " <repeats>_<name> holding png/jpg/webp/bmp images)");
    }

    /**
     * Scans the folders {@code specs} in order (a {@code --dataset_config}'s subsets, or the folders of
     * {@link #scan}), balancing the regularisation images as {@link #scan(Path, Path, String, boolean, Reporter)}
     * says.
     *
     * @param defaults the caption processing of folders without their own (whether their caption files are read
     *                 whole, for wildcards)
     * @param noImages the error when no training image is found
     */
    public static DreamBoothDataset of(List<SubsetSpec> specs, CaptionOptions defaults, boolean strict, Reporter reporter,
                                       String noImages) {
        List<Subset> subsets = new ArrayList<>();
        List<Item> items = new ArrayList<>();
        List<Item> reg = new ArrayList<>();
        for (SubsetSpec spec : specs) {
            scanSubset(spec, defaults, strict, reporter, subsets, spec.reg() ? reg : items);
        }
        if (items.isEmpty()) {
            throw new InputException(noImages);
        }
        DreamBoothDataset found = new DreamBoothDataset(subsets, items);
        int train = found.numTrainImages();
        if (reg.isEmpty()) {
            if (specs.stream().anyMatch(SubsetSpec::reg)) {
                reporter.log(Reporter.Level.WARNING, "WARNING: no regularisation images found");
            }
            return found;
        }
        int[] repeats = new int[reg.size()];
        int joined = 0;
        long n = 0;
        for (boolean first = true; n < train; first = false) {
            for (int i = 0; i < reg.size() && n < train; i++) {
                if (first) {
                    repeats[i] = reg.get(i).repeats();
                    joined++;
                    n += repeats[i];
                } else {
                    repeats[i]++;
                    n++;
                }
            }
        }
        if (joined < reg.size()) {
            reporter.log(Reporter.Level.WARNING, "WARNING: " + (reg.size() - joined) + " of " + reg.size()
                    + " regularisation images are not used (they outnumber the " + train
                    + " training images × repeats; the first " + joined + " are)");
        }
        for (int i = 0; i < joined; i++) {
            Item it = reg.get(i);
            items.add(new Item(it.image(), it.subset(), it.caption(), it.width(), it.height(), repeats[i], true));
        }
        return new DreamBoothDataset(subsets, items);
    }

    /** The {@code <repeats>_<name>} folders of {@code root}, in name order. */
    private static List<SubsetSpec> folders(Path root, boolean reg, String captionExtension, boolean strict,
                                            Reporter reporter) {
        String what = reg ? "regularisation" : "training";
        if (!Files.isDirectory(root)) {
            throw new InputException(root + ": " + what + " folder does not exist");
        }
        TreeMap<String, Path> dirs = new TreeMap<>();
        try (DirectoryStream<Path> ds = Files.newDirectoryStream(root)) {
            for (Path p : ds) {
                if (Files.isDirectory(p)) {
                    dirs.put(p.getFileName().toString(), p);
                }
            }
        } catch (IOException e) {
            throw new InputException(root + ": cannot list: " + e.getMessage(), e);
        }
        List<SubsetSpec> out = new ArrayList<>();
        for (var e : dirs.entrySet()) {
            String name = e.getKey();
            int us = name.indexOf('_');
            int repeats;
            try {
                repeats = Integer.parseInt(us < 0 ? name : name.substring(0, us));
            } catch (NumberFormatException ex) {
                problem(strict, reporter, e.getValue() + ": folder name is not <repeats>_<name>; skipped");
                continue;
            }
            if (repeats < 1) {
                problem(strict, reporter, e.getValue() + ": repeats " + repeats + " < 1; skipped");
                continue;
            }
            String classTokens = us < 0 ? "" : name.substring(us + 1);
            out.add(new SubsetSpec(e.getValue(), name, repeats, classTokens, reg, captionExtension, null));
        }
        return out;
    }

    /** Adds the subset {@code spec} to {@code subsets} and its images to {@code items}. */
    private static void scanSubset(SubsetSpec spec, CaptionOptions defaults, boolean strict, Reporter reporter,
                                   List<Subset> subsets, List<Item> items) {
        if (!Files.isDirectory(spec.dir())) {
            problem(strict, reporter, spec.dir() + ": image folder does not exist; skipped");
            return;
        }
        int subsetIndex = subsets.size();
        int count = 0;
        for (Path img : globImages(spec.dir())) {
            int[] size;
            try {
                size = readSize(img);
            } catch (InputException ex) {
                problem(strict, reporter, ex.getMessage() + "; skipped");
                continue;
            }
            String caption;
            try {
                caption = readCaption(img, spec.captionExtension(), spec.classTokens(),
                        (spec.captions() != null ? spec.captions() : defaults).wildcard(), reporter);
            } catch (InputException ex) {
                problem(strict, reporter, ex.getMessage() + "; image skipped");
                continue;
            }
            items.add(new Item(img, subsetIndex, caption, size[0], size[1], spec.repeats(), spec.reg()));
            count++;
        }
        if (count == 0) {
            // the reference ignores such a subset: not counted, not in ss_dataset_dirs
            reporter.log(Reporter.Level.WARNING, "WARNING: " + spec.dir() + ": no images; folder ignored");
            return;
        }
        subsets.add(new Subset(spec.dirName(), spec.dir(), spec.repeats(), spec.classTokens(), count, spec.reg(),
                spec.captions(), spec.conditioningDir()));
    }

    private static void problem(boolean strict, Reporter reporter, String message) {
        if (strict) {
            throw new InputException(message.replace("; skipped", "").replace("; image skipped", "") + " (--strict)");
        }
        reporter.log(Reporter.Level.WARNING, "WARNING: " + message);
    }

    /** The reference's {@code glob_images}: listed extensions in either case, not recursive, sorted, unique. */
    public static List<Path> globImages(Path dir) {
        TreeSet<Path> out = new TreeSet<>();
        try (DirectoryStream<Path> ds = Files.newDirectoryStream(dir)) {
            for (Path p : ds) {
                String n = p.getFileName().toString();
                int dot = n.lastIndexOf('.');
                if (dot < 0 || !Files.isRegularFile(p)) {
                    continue;
                }
                String ext = n.substring(dot);
                // the reference globs "*.png" and "*.PNG": exact lower or upper case only
                if ((IMAGE_EXTENSIONS.contains(ext) || IMAGE_EXTENSIONS.contains(ext.toLowerCase(Locale.ROOT))
                        && ext.equals(ext.toUpperCase(Locale.ROOT)))) {
                    out.add(p);
                }
            }
        } catch (IOException e) {
            throw new InputException(dir + ": cannot list: " + e.getMessage(), e);
        }
        return List.copyOf(out);
    }

    /** Width and height from the image header (no full decode). */
    public static int[] readSize(Path img) {
        try (ImageInputStream in = ImageIO.createImageInputStream(img.toFile())) {
            if (in == null) {
                throw new InputException(img + ": cannot open image");
            }
            Iterator<ImageReader> readers = ImageIO.getImageReaders(in);
            if (!readers.hasNext()) {
                throw new InputException(img + ": not a readable image (no decoder for its content)");
            }
            ImageReader r = readers.next();
            try {
                r.setInput(in, true, true);
                int w = r.getWidth(0);
                int h = r.getHeight(0);
                if (w <= 0 || h <= 0) {
                    throw new InputException(img + ": image has no pixels");
                }
                return new int[] {w, h};
            } finally {
                r.dispose();
            }
        } catch (IOException | RuntimeException e) {
            if (e instanceof InputException ie) {
                throw ie;
            }
            throw new InputException(img + ": broken image: " + e.getMessage(), e);
        }
    }

    /**
     * The caption of {@code img} (trainer-spec §3.2): {@code <stem><ext>}, else the face-crop name (the file
     * stem without its last four {@code _} tokens, when it has at least five), else the class tokens. Only
     * the first line, stripped. The face-crop rule is applied to the file name only (the reference splits
     * the whole path, which misfires on folders with underscores).
     */
    public static String readCaption(Path img, String extension, String classTokens, Reporter reporter) {
        return readCaption(img, extension, classTokens, false, reporter);
    }

    /**
     * {@link #readCaption(Path, String, String, Reporter)}; with {@code allLines} ({@code --enable_wildcard}) every
     * non-empty line, stripped, joined with {@code "\n"}, as the reference reads wildcard captions.
     */
    public static String readCaption(Path img, String extension, String classTokens, boolean allLines,
                                     Reporter reporter) {
        String file = img.getFileName().toString();
        int dot = file.lastIndexOf('.');
        String stem = dot < 0 ? file : file.substring(0, dot);
        List<Path> candidates = new ArrayList<>();
        candidates.add(img.resolveSibling(stem + extension));
        String[] tokens = stem.split("_", -1);
        if (tokens.length >= 5) {
            candidates.add(img.resolveSibling(String.join("_", java.util.Arrays.copyOf(tokens, tokens.length - 4)) + extension));
        }
        for (Path c : candidates) {
            if (Files.isRegularFile(c)) {
                String text;
                try {
                    text = StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                            .onUnmappableCharacter(CodingErrorAction.REPORT)
                            .decode(ByteBuffer.wrap(Files.readAllBytes(c))).toString();
                } catch (CharacterCodingException e) {
                    throw new InputException(c + ": caption is not UTF-8 text");
                } catch (IOException e) {
                    throw new InputException(c + ": cannot read caption: " + e.getMessage());
                }
                if (text.startsWith("\uFEFF")) {
                    text = text.substring(1);
                }
                if (allLines) {
                    List<String> lines = new ArrayList<>();
                    for (String line : text.split("\r\n|\r|\n")) {
                        if (!line.strip().isEmpty()) {
                            lines.add(line.strip());
                        }
                    }
                    if (lines.isEmpty() && reporter != null) {
                        reporter.log(Reporter.Level.WARNING, "WARNING: " + c + ": empty caption");
                    }
                    return String.join("\n", lines);
                }
                // Python's text mode ends a line at \n, \r\n or a lone \r (universal newlines)
                int nl = 0;
                while (nl < text.length() && text.charAt(nl) != '\n' && text.charAt(nl) != '\r') {
                    nl++;
                }
                String first = text.substring(0, nl).strip();
                if (first.isEmpty() && reporter != null) {
                    reporter.log(Reporter.Level.WARNING, "WARNING: " + c + ": empty caption");
                }
                return first;
            }
        }
        return classTokens;
    }
}
