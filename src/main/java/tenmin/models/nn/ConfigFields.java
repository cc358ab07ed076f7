package tenmin.models.nn;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Iterator;
import java.util.Set;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import tenmin.core.InputException;

/**
 * Typed reads of a model configuration's JSON fields (e.g. the sections of a fixtures {@code config.json}),
 * each failing with an {@link InputException} that names the source ({@code where}) and the field.
 */
public final class ConfigFields {
    private ConfigFields() {
    }

    /** The object itself, or an error when it is missing or not an object. */
    public static JsonNode object(JsonNode node, String where) {
        if (node == null || !node.isObject()) {
            throw new InputException(where + ": expected a JSON object");
        }
        return node;
    }

    /**
     * The object {@code section} of the JSON file {@code configJson} (e.g. "te1" of a fixtures
     * {@code config.json}); errors name the file.
     */
    public static JsonNode section(Path configJson, String section) {
        JsonNode root;
        try {
            root = new ObjectMapper().readTree(Files.readString(configJson));
        } catch (IOException e) {
            throw new InputException(configJson + ": cannot read JSON (" + e.getMessage().lines().findFirst().orElse("") + ")");
        }
        JsonNode node = root == null ? null : root.get(section);
        if (node == null || !node.isObject()) {
            throw new InputException(configJson + ": no \"" + section + "\" object");
        }
        return node;
    }

    /** Fails on the first field of {@code node} that is not in {@code known}. */
    public static void onlyKnown(JsonNode node, Set<String> known, String where) {
        for (Iterator<String> it = node.fieldNames(); it.hasNext(); ) {
            String key = it.next();
            if (!known.contains(key)) {
                throw new InputException(where + ": unknown key \"" + key + "\"");
            }
        }
    }

    /** A required field, present and not null. */
    public static JsonNode field(JsonNode node, String name, String where) {
        JsonNode v = node.get(name);
        if (v == null || v.isNull()) {
            throw new InputException(where + ": missing field \"" + name + "\"");
        }
        return v;
    }

    public static int integer(JsonNode node, String name, String where) {
        return asInt(field(node, name, where), name, where);
    }

    /** An optional integer field, {@code fallback} when absent. */
    public static int integer(JsonNode node, String name, String where, int fallback) {
        return node.has(name) && !node.get(name).isNull() ? integer(node, name, where) : fallback;
    }

    public static double number(JsonNode node, String name, String where) {
        JsonNode v = field(node, name, where);
        if (!v.isNumber()) {
            throw new InputException(where + ": field \"" + name + "\" must be a number, found " + v);
        }
        return v.doubleValue();
    }

    public static String text(JsonNode node, String name, String where) {
        JsonNode v = field(node, name, where);
        if (!v.isTextual()) {
            throw new InputException(where + ": field \"" + name + "\" must be a string, found " + v);
        }
        return v.textValue();
    }

    public static boolean bool(JsonNode node, String name, String where) {
        JsonNode v = field(node, name, where);
        if (!v.isBoolean()) {
            throw new InputException(where + ": field \"" + name + "\" must be true or false, found " + v);
        }
        return v.booleanValue();
    }

    /** An array of integers. */
    public static int[] integers(JsonNode node, String name, String where) {
        JsonNode v = field(node, name, where);
        if (!v.isArray()) {
            throw new InputException(where + ": field \"" + name + "\" must be an array of integers, found " + v);
        }
        int[] out = new int[v.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = asInt(v.get(i), name + "[" + i + "]", where);
        }
        return out;
    }

    private static int asInt(JsonNode v, String name, String where) {
        if (!v.isIntegralNumber() || !v.canConvertToInt()) {
            throw new InputException(where + ": field \"" + name + "\" must be an integer, found " + v);
        }
        return v.intValue();
    }
}
