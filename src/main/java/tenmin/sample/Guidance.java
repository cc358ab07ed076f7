package tenmin.sample;

/** Classifier-free guidance (Ho & Salimans 2022; diffusers and kohya's sample pipelines, trainer-spec §11). */
public final class Guidance {
    private Guidance() {
    }

    /**
     * {@code ε = ε_u + scale·(ε_c − ε_u)} elementwise in float32, evaluated in that order as the reference
     * pipelines write it (new array). With scale 1 this is ε_c up to rounding; with 0, ε_u.
     *
     * @param uncond ε of the negative prompt
     * @param cond   ε of the prompt
     */
    public static float[] combine(float[] uncond, float[] cond, double scale) {
        if (uncond.length != cond.length) {
            throw new IllegalArgumentException("uncond has " + uncond.length + " values, cond " + cond.length);
        }
        float s = (float) scale;
        float[] out = new float[cond.length];
        for (int i = 0; i < out.length; i++) {
            out[i] = uncond[i] + s * (cond[i] - uncond[i]);
        }
        return out;
    }
}
