package tenmin.models.sdxl;

import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Which U-Net blocks run with gradient checkpointing: a block named here keeps only its inputs during
 * the forward and recomputes its activations in the backward (identical results, less memory, about
 * one extra forward of that block). Block names are the module paths of sgm's
 * {@code TimestepEmbedSequential}s: {@code input_blocks.N}, {@code middle_block}, {@code output_blocks.N}.
 *
 * <p>Full checkpointing is what the reference trainer does with {@code --gradient_checkpointing}; a
 * card with memory to spare checkpoints only the blocks whose activations are largest, or none.
 *
 * @param everyBlock every block
 * @param blocks     the named blocks (when not {@code everyBlock})
 */
public record CheckpointPolicy(boolean everyBlock, Set<String> blocks) {
    private static final Pattern RANGE = Pattern.compile("(input_blocks|output_blocks)\\.(\\d+)(?:-(\\d+))?");

    public CheckpointPolicy {
        blocks = Set.copyOf(blocks);
    }

    /** The spelling of "choose by the device's free memory" ({@link #autoCandidates}), which {@link #parse} does not take. */
    public static final String AUTO = "auto";

    /** True when {@code spec} asks for the automatic choice. */
    public static boolean isAuto(String spec) {
        return spec != null && spec.strip().equals(AUTO);
    }

    /** No block is checkpointed (fastest, most memory). */
    public static CheckpointPolicy none() {
        return new CheckpointPolicy(false, Set.of());
    }

    /** Every block is checkpointed (least memory; the reference's {@code --gradient_checkpointing}). */
    public static CheckpointPolicy all() {
        return new CheckpointPolicy(true, Set.of());
    }

    /** Exactly the named blocks. */
    public static CheckpointPolicy of(Collection<String> blocks) {
        return new CheckpointPolicy(false, new TreeSet<>(blocks));
    }

    /**
     * Parses {@code all}, {@code none}, or a comma-separated list of block names where a numbered block
     * may be a range: {@code input_blocks.1-8,middle_block,output_blocks.0-2}.
     *
     * @throws IllegalArgumentException naming the bad element
     */
    public static CheckpointPolicy parse(String spec) {
        String s = spec.trim();
        if (s.equals("all")) {
            return all();
        }
        if (s.equals("none") || s.isEmpty()) {
            return none();
        }
        List<String> names = new ArrayList<>();
        for (String part : s.split(",")) {
            String p = part.trim();
            if (p.equals("middle_block")) {
                names.add(p);
                continue;
            }
            Matcher m = RANGE.matcher(p);
            if (!m.matches()) {
                throw new IllegalArgumentException("checkpointing: '" + p + "' is not a block (expected input_blocks.N,"
                        + " middle_block, output_blocks.N, or a range such as output_blocks.0-2)");
            }
            int from = Integer.parseInt(m.group(2));
            int to = m.group(3) == null ? from : Integer.parseInt(m.group(3));
            if (to < from) {
                throw new IllegalArgumentException("checkpointing: empty range '" + p + "'");
            }
            for (int i = from; i <= to; i++) {
                names.add(m.group(1) + "." + i);
            }
        }
        return of(names);
    }

    /**
     * The middle block and the blocks that work at the {@code levels} coarsest resolutions of {@code config}'s
     * U-Net: the encoder blocks of those levels (with the down-sampling that leads into the next level) and the
     * decoder blocks of those levels (with the up-sampling that ends them). On SDXL the coarse levels hold the
     * deep transformers, which keep the most activation memory per FLOP of recomputation (planned at the
     * recipe's size: 30.7 GiB for 4.1 TFLOP per image at 32², 13.8 for 1.8 at 64², 6.0 for 0.8 in the middle
     * block, but 4.1 for 0.9 at 128²), so they are the first to checkpoint when memory is short. {@code levels}
     * 0 is the middle block alone; {@code config.levels()} is every block.
     */
    public static CheckpointPolicy coarsestLevels(UnetConfig config, int levels) {
        if (levels < 0 || levels > config.levels()) {
            throw new IllegalArgumentException("levels " + levels + " of a U-Net with " + config.levels());
        }
        int first = config.levels() - levels; // the finest level checkpointed
        List<String> names = new ArrayList<>();
        int index = 1;
        for (int level = 0; level < config.levels(); level++) {
            int blocks = config.numResBlocks() + (level != config.levels() - 1 ? 1 : 0);
            for (int i = 0; i < blocks; i++, index++) {
                if (level >= first) {
                    names.add("input_blocks." + index);
                }
            }
        }
        names.add("middle_block");
        index = 0;
        for (int level = config.levels() - 1; level >= 0; level--) {
            for (int r = 0; r <= config.numResBlocks(); r++, index++) {
                if (level >= first) {
                    names.add("output_blocks." + index);
                }
            }
        }
        return levels == config.levels() ? all() : of(names);
    }

    /**
     * What {@code auto} tries, least recomputation first: none, the middle block, then with it the coarsest 1,
     * 2, ... levels, up to all. The trainer takes the first whose planned peak fits the device.
     */
    public static List<CheckpointPolicy> autoCandidates(UnetConfig config) {
        List<CheckpointPolicy> c = new ArrayList<>();
        c.add(none());
        for (int levels = 0; levels <= config.levels(); levels++) {
            c.add(coarsestLevels(config, levels));
        }
        return c;
    }

    /** True when no block is checkpointed. */
    public boolean isNone() {
        return !everyBlock && blocks.isEmpty();
    }

    /** True when the block named {@code block} is checkpointed. */
    public boolean checkpoints(String block) {
        return everyBlock || blocks.contains(block);
    }

    /** {@code all}, {@code none}, or the blocks in the form {@link #parse} reads, runs as ranges: input_blocks.1-5,... */
    @Override
    public String toString() {
        if (everyBlock || blocks.isEmpty()) {
            return everyBlock ? "all" : "none";
        }
        List<String> parts = new ArrayList<>();
        for (String prefix : new String[] {"input_blocks", "middle_block", "output_blocks"}) {
            if (prefix.equals("middle_block")) {
                if (blocks.contains(prefix)) {
                    parts.add(prefix);
                }
                continue;
            }
            TreeSet<Integer> indices = new TreeSet<>();
            for (String b : blocks) {
                if (b.startsWith(prefix + ".")) {
                    indices.add(Integer.parseInt(b.substring(prefix.length() + 1)));
                }
            }
            Integer start = null;
            Integer prev = null;
            for (int i : indices) {
                if (start != null && i != prev + 1) {
                    parts.add(prefix + "." + start + (prev > start ? "-" + prev : ""));
                    start = null;
                }
                if (start == null) {
                    start = i;
                }
                prev = i;
            }
            if (start != null) {
                parts.add(prefix + "." + start + (prev > start ? "-" + prev : ""));
            }
        }
        return String.join(",", parts);
    }
}
