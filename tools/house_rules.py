#!/usr/bin/env python3
"""house_rules.py: checks the size rules of issue 14 on the Swift sources and tests (and the C shims).

Lists every line over 120 columns, every file over 400 lines, and every function, initializer, subscript or
computed property whose body (from the line of its declaration to its closing brace) is over 60 lines. Braces
inside string literals and comments do not count. A numeric kernel may be longer when marked with the comment
line `// house: numeric kernel` right above its declaration (above its attributes and doc comment, or among them).

    python3 tools/house_rules.py                  check Sources/ and Tests/ of this repository
    python3 tools/house_rules.py PATH...          check these files or folders only
    python3 tools/house_rules.py --report-only    list, but exit 0

Prints `path:line: what` for each finding and exits 1 when there is any (2 on bad usage). No dependencies.
"""
import os
import re
import sys

MAX_COLUMNS = 120
MAX_FILE_LINES = 400
MAX_FUNCTION_LINES = 60
KERNEL_MARK = "// house: numeric kernel"
STRING_OPEN = re.compile(r'(#*)("""|")')

SWIFT_DECL = re.compile(r"(?<![.\w])(func|init[?!]?(?=\s*[(<])|subscript(?=\s*[(<])|deinit(?=\s*\{)|var)(?!\w)")
SWIFT_ANY_DECL = re.compile(
    r"^\s*(?:@\w+(?:\([^)]*\))?\s+)*(?:(?:public|private|fileprivate|internal|open|static|class|final|"
    r"override|mutating|nonmutating|convenience|required|lazy|nonisolated)\s+)*"
    r"(?:func|init|subscript|var|let|case|typealias|associatedtype|struct|class|enum|protocol|extension)\b")


def mask_code(text, c_language):
    """The text with the insides of comments and string literals replaced by spaces (newlines kept), so that
    brace and keyword searches see only code. Swift block comments nest; string interpolations `\\(…)` are code."""
    out = list(text)
    n = len(text)
    i = 0
    # Stack of open string literals: (closing delimiter, raw hashes, paren depth of the interpolation we are in).
    # An entry ("code", depth) means we are inside an interpolation whose parentheses are `depth` deep.
    stack = []

    def blank(a, b):
        for k in range(a, b):
            if out[k] != "\n":
                out[k] = " "

    while i < n:
        in_string = stack and stack[-1][0] != "code"
        if in_string:
            close, hashes = stack[-1][0], stack[-1][1]
            if text.startswith("\\" + "#" * hashes + "(", i) and not c_language:
                k = i + 2 + hashes
                blank(i, k - 1)
                stack.append(("code", 0))
                i = k
                continue
            if text[i] == "\\" and hashes == 0:
                blank(i, min(i + 2, n))
                i += 2
                continue
            end = close + "#" * hashes
            if text.startswith(end, i):
                stack.pop()
                i += len(end)
                continue
            if text[i] == "\n" and close != '"""':
                stack.pop()  # an unterminated single-line string: let the next line be code again
                i += 1
                continue
            blank(i, i + 1)
            i += 1
            continue
        ch = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            blank(i, j)
            i = j
            continue
        if text.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if text.startswith("/*", j) and not c_language:
                    depth, j = depth + 1, j + 2
                elif text.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            blank(i, j)
            i = j
            continue
        if stack and stack[-1][0] == "code":
            if ch == "(":
                stack[-1] = ("code", stack[-1][1] + 1)
            elif ch == ")":
                if stack[-1][1] == 0:
                    stack.pop()
                    blank(i, i + 1)
                    i += 1
                    continue
                stack[-1] = ("code", stack[-1][1] - 1)
        if c_language and ch == "'":
            j = i + 1
            while j < n and text[j] not in "'\n":
                j += 2 if text[j] == "\\" else 1
            blank(i + 1, min(j, n))
            i = j + 1
            continue
        m = STRING_OPEN.match(text, i) if ch in '#"' else None
        if m and (ch == '"' or not c_language):
            hashes = 0 if c_language else len(m.group(1))
            stack.append((m.group(2), hashes))
            i = m.end()
            continue
        i += 1
    return "".join(out)


def marked_as_kernel(lines, decl_index):
    """True when the comment/attribute block directly above the declaration holds the kernel mark."""
    k = decl_index - 1
    while k >= 0:
        s = lines[k].strip()
        if s == KERNEL_MARK:
            return True
        if s.startswith("//") or s.startswith("@") or s.startswith("/*") or s.startswith("*"):
            k -= 1
            continue
        return False
    return False


def closing_line(code, start):
    """Line index (0-based) of the brace that closes the `{` at offset `start` of the masked code, or None."""
    depth = 0
    for j in range(start, len(code)):
        c = code[j]
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return code.count("\n", 0, j)
    return None


def swift_bodies(code):
    """(declaration line index, body `{` offset, kind) for each func/init/subscript/deinit/computed var."""
    line_starts = [0] + [m.end() for m in re.finditer("\n", code)]
    lines = code.split("\n")
    found = []
    for li, line in enumerate(lines):
        for m in SWIFT_DECL.finditer(line):
            kind = m.group(1).rstrip("?!")
            start = line_starts[li] + m.end()
            brace = None
            if kind == "var":
                brace = computed_var_brace(code, start)
            else:
                brace = signature_brace(code, start, lines, li)
            if brace is not None:
                found.append((li, brace, kind))
    return found


def computed_var_brace(code, start):
    """The `{` of `var name: Type {` on the same line (no `=` before it at bracket depth 0), else None."""
    depth = 0
    saw_colon = False
    j = start
    while j < len(code) and code[j] != "\n":
        c = code[j]
        if c in "([<":
            depth += 1
        elif c in ")]" or (c == ">" and code[j - 1] != "-"):
            depth -= 1
        elif depth == 0 and c == ":":
            saw_colon = True
        elif depth == 0 and c == "=":
            return None
        elif depth == 0 and c == "{":
            return j if saw_colon else None
        elif depth == 0 and c in "},;":
            return None
        j += 1
    return None


def signature_brace(code, start, lines, decl_line):
    """The `{` that opens the body of the declaration starting at `start`, or None for a bodiless requirement."""
    depth = 0
    line = decl_line
    j = start
    while j < len(code):
        c = code[j]
        if c == "\n":
            line += 1
            if depth == 0 and line < len(lines) and SWIFT_ANY_DECL.match(lines[line]):
                return None
        elif c in "([":
            depth += 1
        elif c in ")]":
            depth -= 1
        elif depth == 0 and c == "{":
            return j
        elif depth == 0 and c in "};":
            return None
        j += 1
    return None


def c_bodies(code):
    """(declaration line index, body `{` offset, kind) for each function definition at the top level of a C file."""
    found = []
    depth = 0
    chunk_start = 0
    for j, c in enumerate(code):
        if c == "{":
            if depth == 0:
                head = code[chunk_start:j]
                if ")" in head and not re.search(r"\b(struct|union|enum)\b|=", head):
                    offset = chunk_start + (len(head) - len(head.lstrip()))
                    found.append((code.count("\n", 0, offset), j, "function"))
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                chunk_start = j + 1
        elif depth == 0 and c == ";":
            chunk_start = j + 1
        elif depth == 0 and c == "#" and (j == 0 or code[j - 1] == "\n"):
            end = code.find("\n", j)
            chunk_start = len(code) if end < 0 else end + 1
    return found


def check_file(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        text = f.read()
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    findings = []
    for li, line in enumerate(lines):
        if len(line) > MAX_COLUMNS:
            findings.append((li + 1, "line of %d columns (at most %d)" % (len(line), MAX_COLUMNS)))
    if len(lines) > MAX_FILE_LINES:
        findings.append((1, "file of %d lines (at most %d)" % (len(lines), MAX_FILE_LINES)))
    c_language = path.endswith((".c", ".h"))
    code = mask_code(text, c_language)
    bodies = c_bodies(code) if c_language else swift_bodies(code)
    for decl_line, brace, kind in bodies:
        end = closing_line(code, brace)
        if end is None:
            findings.append((decl_line + 1, "%s body has no closing brace" % kind))
            continue
        length = end - decl_line + 1
        if length > MAX_FUNCTION_LINES and not marked_as_kernel(lines, decl_line):
            name = " ".join(lines[decl_line].split())[:60]
            findings.append((decl_line + 1, "%s of %d lines (at most %d): %s" % (kind, length,
                                                                               MAX_FUNCTION_LINES, name)))
    return sorted(findings)


def wanted(path):
    parts = path.split(os.sep)
    if path.endswith(".swift"):
        return True
    if path.endswith((".c", ".h")):
        # The C shim targets: Sources/CMPI, Sources/CPNG, … (a capital C and a capital letter).
        return "Sources" in parts and any(re.match("C[A-Z]", p) for p in parts[parts.index("Sources") + 1:][:1])
    return False


def files_under(roots):
    for root in roots:
        if os.path.isfile(root):
            yield root
            continue
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for name in sorted(filenames):
                path = os.path.join(dirpath, name)
                if wanted(path):
                    yield path


def main(argv):
    report_only = "--report-only" in argv
    args = [a for a in argv if a != "--report-only"]
    if any(a.startswith("-") for a in args):
        if any(a in ("-h", "--help") for a in args):
            print(__doc__.strip())
            return 0
        print("house_rules.py: unknown option %s (see --help)" % [a for a in args if a.startswith("-")][0],
              file=sys.stderr)
        return 2
    if not args:
        repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        os.chdir(repo)
        args = ["Sources", "Tests"]
    total = 0
    for path in files_under(args):
        for line, what in check_file(path):
            print("%s:%d: %s" % (path, line, what))
            total += 1
    print("house_rules: %d finding%s" % (total, "" if total == 1 else "s"), file=sys.stderr)
    return 0 if report_only or total == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
