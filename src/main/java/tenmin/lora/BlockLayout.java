package tenmin.lora;

import java.util.ArrayList;
import java.util.Collection;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * chop_blocks' view of a LoRA file: tensor keys grouped by UNet block, everything else passing through
 * (postprocess-spec §3.2, versions c1/c2, which the guide uses).
 *
 * <p>A key belongs to block {@code (section, index)} when it starts with
 * {@code lora_unet_(input|middle|output)_block(s)_<index>_}; blocks are sorted by the tuple
 * (section name, index), so {@code input_blocks < middle_block < output_blocks}. A block's "layers" are
 * its tensor keys (3 per module: down, up, alpha; 4 with dora_scale). All other keys (text encoders,
 * {@code time_embed}, {@code label_emb}, {@code out}) pass through.
 */
public final class BlockLayout {
    private static final Pattern BLOCK_KEY = Pattern.compile("^lora_unet_((input|middle|output)_blocks?)_(\\d+)_");

    /** One UNet block: section as spelled in the keys ({@code input_blocks}), index, its tensor keys (sorted). */
    public record Block(String section, int index, List<String> keys) {
        public Block {
            keys = List.copyOf(keys);
        }

        /** {@code input_blocks.4}: the name the layout prints and {@link SdxlKeyMap#blockOf} returns. */
        public String label() {
            return section + "." + index;
        }

        /** chop's vector-string name: {@code INP04}, {@code MID01}, {@code OUT08}. */
        public String shortName() {
            String prefix = section.startsWith("input") ? "INP" : section.startsWith("middle") ? "MID" : "OUT";
            String idx = Integer.toString(index);
            return prefix + (idx.length() < 2 ? "0" + idx : idx);
        }
    }

    private final List<Block> blocks;
    private final List<String> passThrough;

    private BlockLayout(List<Block> blocks, List<String> passThrough) {
        this.blocks = List.copyOf(blocks);
        this.passThrough = List.copyOf(passThrough);
    }

    /** The layout of a set of tensor keys (any order). */
    public static BlockLayout of(Collection<String> tensorKeys) {
        Map<String, Map<Integer, List<String>>> bySection = new TreeMap<>();
        List<String> pass = new ArrayList<>();
        for (String key : tensorKeys) {
            Matcher m = BLOCK_KEY.matcher(key);
            if (m.find()) {
                int idx;
                try {
                    idx = Integer.parseInt(m.group(3));
                } catch (NumberFormatException e) { // absurdly long digit run: not a real block
                    pass.add(key);
                    continue;
                }
                bySection.computeIfAbsent(m.group(1), s -> new TreeMap<>())
                        .computeIfAbsent(idx, i -> new ArrayList<>()).add(key);
            } else {
                pass.add(key);
            }
        }
        List<Block> blocks = new ArrayList<>();
        for (Map.Entry<String, Map<Integer, List<String>>> s : bySection.entrySet()) {
            for (Map.Entry<Integer, List<String>> b : s.getValue().entrySet()) {
                List<String> keys = new ArrayList<>(b.getValue());
                keys.sort(Comparator.naturalOrder());
                blocks.add(new Block(s.getKey(), b.getKey(), keys));
            }
        }
        pass.sort(Comparator.naturalOrder());
        return new BlockLayout(blocks, pass);
    }

    /** The layout of a LoRA file's tensor keys. */
    public static BlockLayout of(LoraFile lora) {
        return of(lora.file().names());
    }

    public List<Block> blocks() {
        return blocks;
    }

    /** Keys outside every block (copied unchanged by chop), sorted. */
    public List<String> passThrough() {
        return passThrough;
    }

    /** Number of UNet keys (in blocks). */
    public int blockKeyCount() {
        int n = 0;
        for (Block b : blocks) {
            n += b.keys().size();
        }
        return n;
    }

    /** The index of the block holding LoRA module {@code module} ({@code lora_unet_input_blocks_4_...}), or -1. */
    public int indexOfModule(String module) {
        Matcher m = BLOCK_KEY.matcher(module + "_");
        if (!m.find()) {
            return -1;
        }
        for (int i = 0; i < blocks.size(); i++) {
            Block b = blocks.get(i);
            if (b.section().equals(m.group(1)) && Integer.toString(b.index()).equals(stripZeros(m.group(3)))) {
                return i;
            }
        }
        return -1;
    }

    private static String stripZeros(String digits) {
        int i = 0;
        while (i < digits.length() - 1 && digits.charAt(i) == '0') {
            i++;
        }
        return digits.substring(i);
    }

    /** chop c1's vector string: {@code 1,INP01,INP02,...,OUT08}. */
    public String vectorString() {
        StringBuilder sb = new StringBuilder("1");
        for (Block b : blocks) {
            sb.append(',').append(b.shortName());
        }
        return sb.toString();
    }

    /** One layout line without the level prefix: {@code \t[ 0]  input_blocks.1 layers=9  } (spec §3.3). */
    public static String layoutLine(int i, Block b) {
        return "\t[" + leftPad(Integer.toString(i), 2) + "] " + leftPad(b.section(), 13) + "." + b.index()
                + " layers=" + rightPad(Integer.toString(b.keys().size()), 3);
    }

    static String leftPad(String s, int width) {
        return s.length() >= width ? s : " ".repeat(width - s.length()) + s;
    }

    static String rightPad(String s, int width) {
        return s.length() >= width ? s : s + " ".repeat(width - s.length());
    }

    /**
     * The analysis chop c1 prints (spec §3.3), one string per line:
     * {@code INFO: Blocks layout:}, the layout lines, {@code INFO: Vector string : "..."},
     * {@code INFO: Pass through layers: N}.
     */
    public List<String> analysisLines() {
        List<String> lines = new ArrayList<>();
        lines.add("INFO: Blocks layout:");
        for (int i = 0; i < blocks.size(); i++) {
            lines.add("INFO: " + layoutLine(i, blocks.get(i)));
        }
        // chop c1 prints f'"1,{vector_string}"', so a LoRA without UNet blocks shows "1,"
        lines.add("INFO: Vector string : \"" + (blocks.isEmpty() ? "1," : vectorString()) + "\"");
        lines.add("INFO: Pass through layers: " + passThrough.size());
        return lines;
    }
}
