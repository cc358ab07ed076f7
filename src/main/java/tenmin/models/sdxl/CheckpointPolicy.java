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

    /** True when the block named {@code block} is checkpointed. */
    public boolean checkpoints(String block) {
        return everyBlock || blocks.contains(block);
    }

    @Override
    public String toString() {
        return everyBlock ? "all" : blocks.isEmpty() ? "none" : String.join(",", new TreeSet<>(blocks));
    }
}
