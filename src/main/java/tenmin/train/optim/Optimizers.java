package tenmin.train.optim;

import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

import tenmin.core.InputException;

/**
 * Builds an optimizer from kohya's {@code --optimizer_type} and {@code --optimizer_args} (values already
 * parsed as Python literals: Double, Long, Boolean, List of numbers). Unknown types and keys are input
 * errors naming the argument.
 */
public final class Optimizers {
    private Optimizers() {
    }

    /** kohya's type names (matched case-insensitively) mapped to tenmin's canonical names. */
    public static String canonicalType(String flagValue) {
        return switch (flagValue.toLowerCase(Locale.ROOT)) {
            case "clybw" -> "ClybW";
            case "lodew" -> "LodeW";
            case "adamw", "adamw8bit", "pagedadamw8bit", "torch.optim.adamw" -> "AdamW";
            case "lion", "lion8bit", "pagedlion8bit", "lion_pytorch.lion" -> "Lion";
            case "sgdnesterov", "sgdnesterov8bit" -> "SGDNesterov";
            case "sgd", "torch.optim.sgd" -> "SGD";
            default -> throw new InputException("--optimizer_type: " + flagValue + " is not supported; tenmin has ClybW,"
                    + " LodeW, AdamW, Lion, SGDNesterov and SGD");
        };
    }

    /** True for kohya's 8-bit / paged variants, which tenmin runs as the fp32 optimizer. */
    public static boolean isEightBitAlias(String flagValue) {
        String s = flagValue.toLowerCase(Locale.ROOT);
        return s.endsWith("8bit");
    }

    /** Creates the optimizer of canonical type {@code type} with {@code args} over the class defaults. */
    public static Optimizer create(String type, Map<String, Object> args) {
        Set<String> used = new HashSet<>();
        Optimizer opt = switch (type) {
            case "ClybW", "LodeW" -> {
                ClybW.Hyper d = type.equals("ClybW") ? ClybW.Hyper.CLYBW : ClybW.Hyper.LODEW;
                double[] betas = pair(args, used, "betas", d.beta1(), d.beta2());
                ClybW.Hyper h = new ClybW.Hyper(betas[0], betas[1], num(args, used, "amp_fac", d.ampFac()),
                        num(args, used, "eps", d.eps()), num(args, used, "weight_decay", d.weightDecay()),
                        num(args, used, "centralization", d.centralization()),
                        num(args, used, "normalization", d.normalization()),
                        bool(args, used, "normalize_channels", d.normalizeChannels()));
                yield type.equals("ClybW") ? new ClybW(h) : ClybW.lodeW(h);
            }
            case "AdamW" -> {
                AdamW.Hyper d = AdamW.Hyper.DEFAULTS;
                double[] betas = pair(args, used, "betas", d.beta1(), d.beta2());
                if (args.containsKey("amsgrad") && Boolean.TRUE.equals(args.get("amsgrad"))) {
                    throw new InputException("--optimizer_args: amsgrad=True is not supported");
                }
                used.add("amsgrad");
                yield new AdamW(new AdamW.Hyper(betas[0], betas[1], num(args, used, "eps", d.eps()),
                        num(args, used, "weight_decay", d.weightDecay())));
            }
            case "Lion" -> {
                Lion.Hyper d = Lion.Hyper.DEFAULTS;
                double[] betas = pair(args, used, "betas", d.beta1(), d.beta2());
                yield new Lion(new Lion.Hyper(betas[0], betas[1], num(args, used, "weight_decay", d.weightDecay())));
            }
            case "SGDNesterov", "SGD" -> {
                Sgd.Hyper d = type.equals("SGD") ? Sgd.Hyper.PLAIN : Sgd.Hyper.NESTEROV;
                double momentum = num(args, used, "momentum", d.momentum());
                double dampening = num(args, used, "dampening", d.dampening());
                boolean nesterov = bool(args, used, "nesterov", d.nesterov());
                try {
                    yield new Sgd(new Sgd.Hyper(momentum, dampening, num(args, used, "weight_decay", d.weightDecay()),
                            nesterov));
                } catch (IllegalArgumentException e) {
                    throw new InputException("--optimizer_args: " + e.getMessage());
                }
            }
            default -> throw new IllegalArgumentException("unknown canonical optimizer type " + type);
        };
        for (String k : args.keySet()) {
            if (!used.contains(k)) {
                throw new InputException("--optimizer_args: " + k + " is not an argument of " + type);
            }
        }
        return opt;
    }

    private static double num(Map<String, Object> args, Set<String> used, String key, double def) {
        used.add(key);
        Object v = args.get(key);
        if (v == null) {
            return def;
        }
        if (v instanceof Number n && !(v instanceof Boolean)) {
            return n.doubleValue();
        }
        throw new InputException("--optimizer_args: " + key + " must be a number, got " + v);
    }

    private static boolean bool(Map<String, Object> args, Set<String> used, String key, boolean def) {
        used.add(key);
        Object v = args.get(key);
        if (v == null) {
            return def;
        }
        if (v instanceof Boolean b) {
            return b;
        }
        throw new InputException("--optimizer_args: " + key + " must be True or False, got " + v);
    }

    private static double[] pair(Map<String, Object> args, Set<String> used, String key, double a, double b) {
        used.add(key);
        Object v = args.get(key);
        if (v == null) {
            return new double[] {a, b};
        }
        if (v instanceof List<?> l && l.size() == 2 && l.get(0) instanceof Number x && l.get(1) instanceof Number y) {
            return new double[] {x.doubleValue(), y.doubleValue()};
        }
        throw new InputException("--optimizer_args: " + key + " must be a pair like (0.9,0.999), got " + v);
    }
}
