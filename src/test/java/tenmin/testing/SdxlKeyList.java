package tenmin.testing;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import tenmin.engine.api.Shape;

/**
 * The real SDXL inventory of {@code sdxl-keys.json} (fixtures README §3): checkpoint keys with shapes
 * per section ({@code unet}, {@code vae}, {@code te1}, {@code te2}) and LoCon module lists
 * ({@code locon_unet}, {@code locon_te_full}, {@code locon_te_mlp}).
 */
public final class SdxlKeyList {
    private SdxlKeyList() {
    }

    /** One LoCon module of a list: kohya name, kind ({@code linear}/{@code conv}), geometry, rank and alpha. */
    public record Module(String name, String kind, int kernel, int stride, int padding, int in, int out, int rank,
                         double alpha) {
    }

    private static JsonNode json() {
        try {
            return new ObjectMapper().readTree(Fixtures.require("sdxl-keys.json").toFile());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** Key → shape of a checkpoint section, in file order. */
    public static Map<String, Shape> shapes(String section) {
        Map<String, Shape> out = new LinkedHashMap<>();
        for (JsonNode e : json().get(section)) {
            JsonNode dims = e.get(1);
            int[] d = new int[dims.size()];
            for (int i = 0; i < d.length; i++) {
                d[i] = dims.get(i).asInt();
            }
            out.put(e.get(0).asText(), Shape.of(d));
        }
        return out;
    }

    /** The modules of a LoCon list, in file order. */
    public static List<Module> modules(String section) {
        List<Module> out = new ArrayList<>();
        for (JsonNode m : json().get(section)) {
            out.add(new Module(m.get("lora_name").asText(), m.get("kind").asText(), m.get("kernel").asInt(),
                    m.get("stride").asInt(), m.get("padding").asInt(), m.get("in").asInt(), m.get("out").asInt(),
                    m.get("rank").asInt(), m.get("alpha").asDouble()));
        }
        return out;
    }
}
