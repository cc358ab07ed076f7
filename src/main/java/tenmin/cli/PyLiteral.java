package tenmin.cli;

import java.util.ArrayList;
import java.util.List;

import tenmin.core.InputException;

/**
 * Python literals as kohya reads {@code --optimizer_args} / {@code --lr_scheduler_args} values
 * ({@code ast.literal_eval}): ints, floats, {@code True}/{@code False}/{@code None}, quoted strings, and
 * tuples or lists of those. Returns Long, Double, Boolean, null, String or List.
 */
final class PyLiteral {
    private final String s;
    private final String where;
    private int pos;

    private PyLiteral(String s, String where) {
        this.s = s;
        this.where = where;
    }

    static Object parse(String text, String where) {
        PyLiteral p = new PyLiteral(text.strip(), where);
        Object v = p.value();
        p.ws();
        if (p.pos != p.s.length()) {
            throw p.error();
        }
        return v;
    }

    private InputException error() {
        return new InputException(where + ": '" + s + "' is not a Python literal (number, True/False, 'string',"
                + " or a tuple like (0.9,0.999))");
    }

    private void ws() {
        while (pos < s.length() && Character.isWhitespace(s.charAt(pos))) {
            pos++;
        }
    }

    private Object value() {
        ws();
        if (pos >= s.length()) {
            throw error();
        }
        char c = s.charAt(pos);
        if (c == '(' || c == '[') {
            char close = c == '(' ? ')' : ']';
            pos++;
            List<Object> items = new ArrayList<>();
            while (true) {
                ws();
                if (pos < s.length() && s.charAt(pos) == close) {
                    pos++;
                    return items;
                }
                items.add(value());
                ws();
                if (pos < s.length() && s.charAt(pos) == ',') {
                    pos++;
                } else if (pos >= s.length() || s.charAt(pos) != close) {
                    throw error();
                }
            }
        }
        if (c == '\'' || c == '"') {
            int end = s.indexOf(c, pos + 1);
            if (end < 0) {
                throw error();
            }
            String str = s.substring(pos + 1, end);
            pos = end + 1;
            return str;
        }
        int start = pos;
        while (pos < s.length() && "()[],".indexOf(s.charAt(pos)) < 0 && !Character.isWhitespace(s.charAt(pos))) {
            pos++;
        }
        String tok = s.substring(start, pos);
        switch (tok) {
            case "True":
                return Boolean.TRUE;
            case "False":
                return Boolean.FALSE;
            case "None":
                return null;
            default:
                break;
        }
        String clean = tok.replace("_", "");
        try {
            if (clean.matches("[+-]?\\d+")) {
                return Long.parseLong(clean);
            }
            if (clean.matches("[+-]?(\\d+\\.?\\d*|\\.\\d+)([eE][+-]?\\d+)?") || clean.matches("[+-]?(inf|nan)")) {
                return Double.parseDouble(clean.replace("inf", "Infinity").replace("nan", "NaN"));
            }
        } catch (NumberFormatException e) {
            throw error();
        }
        throw error();
    }
}
