package tenmin.sample;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;

import tenmin.core.ShellWords;

/** The block atlas as text (a table for the terminal), CSV and JSON. */
public final class AtlasReport {
    private AtlasReport() {
    }

    /** The table and the proposal, one string per line. */
    public static List<String> text(BlockAtlas.Result r, LoraSet.Prepared lora, double threshold) {
        List<String> lines = new ArrayList<>();
        lines.add(String.format(Locale.ROOT, "LoRA %s: the full LoRA moves the image by %.4f (RMS, pixels in 0..1)",
                lora.spec().file(), r.fullDistance()));
        boolean without = r.rows().stream().anyMatch(row -> !Double.isNaN(row.without()));
        lines.add(String.format(Locale.ROOT, "%-6s %5s %8s %12s %7s %7s %7s%s  %s", "unit", "chop", "modules", "energy",
                "share", "move", "toward", without ? " without" : "", "proposed"));
        for (BlockAtlas.Row row : r.rows()) {
            BlockAtlas.Unit u = row.unit();
            lines.add(String.format(Locale.ROOT, "%-6s %5s %8d %12.4f %6.1f%% %7s %7s%s  %s", u.name(),
                    u.chopIndex() < 0 ? "-" : Integer.toString(u.chopIndex()), u.modules(), u.energy(), 100 * u.share(),
                    number(row.move()), number(row.toward()), without ? String.format(Locale.ROOT, " %7s", number(row.without())) : "",
                    row.proposed() ? "yes" : ""));
        }
        lines.add(String.format(Locale.ROOT, "proposed: %s (their render covers %s of the way to the full-LoRA image;"
                + " threshold %s)", String.join(", ", r.proposal()), BlockAtlas.percent(r.proposalToward()),
                BlockAtlas.percent(threshold)));
        lines.add("chop vector: " + r.chopVector() + "    ("
                + ShellWords.join(List.of("tenmin", "chop", lora.spec().file().toString(), r.chopVector())) + ")");
        lines.add("block vector: " + r.blockVector() + "    (tenmin blocks, ComfyUI Inspire-Pack LoRA Loader (Block Weight))");
        boolean baseDropped = r.rows().stream().anyMatch(row -> row.unit().chopIndex() < 0 && !row.proposed());
        if (baseDropped) {
            lines.add("note: chop keeps the text encoders (BASE); the block vector drops them too");
        }
        return lines;
    }

    /** One CSV row per unit: unit, label, chop index, modules, energy, share, move, toward, without, proposed. */
    public static String csv(BlockAtlas.Result r) {
        StringBuilder sb = new StringBuilder("unit,block,chop_index,modules,energy,energy_share,move,toward,without,proposed\n");
        for (BlockAtlas.Row row : r.rows()) {
            BlockAtlas.Unit u = row.unit();
            sb.append(u.name()).append(',').append(u.label()).append(',').append(u.chopIndex()).append(',')
                    .append(u.modules()).append(',').append(u.energy()).append(',').append(u.share()).append(',')
                    .append(csvNumber(row.move())).append(',').append(csvNumber(row.toward())).append(',')
                    .append(csvNumber(row.without())).append(',').append(row.proposed() ? 1 : 0).append('\n');
        }
        return sb.toString();
    }

    /** The whole result (without the grid) and the settings, as a JSON object. */
    public static String json(BlockAtlas.Result r, LoraSet.Prepared lora, BlockAtlas.Config config, String grid) {
        Map<String, Object> root = new LinkedHashMap<>();
        root.put("lora", lora.spec().file().toString());
        root.put("lora_hash", lora.hash());
        root.put("strength", lora.spec().strength());
        root.put("block_vector_applied", lora.spec().vector());
        SdxlPipeline.Settings s = config.settings();
        root.put("prompt", s.prompt());
        root.put("negative_prompt", s.negativePrompt());
        root.put("width", s.width());
        root.put("height", s.height());
        root.put("steps", s.sampler().steps());
        root.put("sampler", s.sampler().kind().a1111Name());
        root.put("cfg_scale", s.cfgScale());
        root.put("seed", config.seed());
        root.put("distance", "RMS of 8-bit images scaled to 0..1; move = d(alone, base)/D, toward = 1 - d(alone, full)/D,"
                + " without = 1 - d(removed, full)/D, D = d(full, base)");
        root.put("full_distance", r.fullDistance());
        List<Map<String, Object>> units = new ArrayList<>();
        for (BlockAtlas.Row row : r.rows()) {
            Map<String, Object> u = new LinkedHashMap<>();
            u.put("unit", row.unit().name());
            u.put("block", row.unit().label());
            u.put("chop_index", row.unit().chopIndex());
            u.put("modules", row.unit().modules());
            u.put("energy", row.unit().energy());
            u.put("energy_share", row.unit().share());
            u.put("move", jsonNumber(row.move()));
            u.put("toward", jsonNumber(row.toward()));
            u.put("without", jsonNumber(row.without()));
            u.put("proposed", row.proposed());
            units.add(u);
        }
        root.put("units", units);
        Map<String, Object> proposal = new LinkedHashMap<>();
        proposal.put("units", r.proposal());
        proposal.put("toward", jsonNumber(r.proposalToward()));
        proposal.put("threshold", config.threshold());
        proposal.put("chop_vector", r.chopVector());
        proposal.put("block_vector", r.blockVector());
        root.put("proposal", proposal);
        root.put("renders", r.renders());
        root.put("grid", grid);
        try {
            return new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT).writeValueAsString(root) + "\n";
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }

    private static String number(double v) {
        return Double.isNaN(v) ? "-" : String.format(Locale.ROOT, "%.3f", v);
    }

    private static String csvNumber(double v) {
        return Double.isNaN(v) ? "" : Double.toString(v);
    }

    private static Double jsonNumber(double v) {
        return Double.isNaN(v) ? null : v;
    }
}
