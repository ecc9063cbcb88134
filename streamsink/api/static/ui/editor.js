// A JavaScript editor (CodeMirror 6, vendored) with highlighting, and lint
// markers set from outside: the page compiles the code through the API and
// marks what the API reports (line and column) with setProblems.

import { EditorState, Compartment } from "@codemirror/state";
import {
  EditorView,
  keymap,
  lineNumbers,
  highlightActiveLine,
  highlightActiveLineGutter,
  drawSelection,
} from "@codemirror/view";
import { defaultKeymap, history, historyKeymap, indentWithTab } from "@codemirror/commands";
import {
  bracketMatching,
  defaultHighlightStyle,
  foldGutter,
  indentOnInput,
  syntaxHighlighting,
} from "@codemirror/language";
import { closeBrackets, closeBracketsKeymap } from "@codemirror/autocomplete";
import { searchKeymap, highlightSelectionMatches } from "@codemirror/search";
import { lintGutter, setDiagnostics, lintKeymap } from "@codemirror/lint";
import { javascript } from "@codemirror/lang-javascript";

// CodeMirror adds <style> elements: they carry the nonce the page's CSP allows
const styleNonce = (document.querySelector('meta[name="csp-style-nonce"]') || {}).content || "";

/** The document offset of 1-based (line, column), clamped into the document. */
export function offsetOf(doc, line, column) {
  const l = doc.line(Math.min(Math.max(line || 1, 1), doc.lines));
  return Math.min(l.from + Math.max((column || 1) - 1, 0), l.to);
}

/**
 * Mount an editor in `parent` holding `code`. `onChange(code)` is called
 * after each edit; `label` names it for screen readers. Tab indents; Escape
 * then Tab leaves the editor (CodeMirror's accessible tab handling).
 */
export function createEditor(parent, { code = "", onChange = () => {}, label = "Handler code" } = {}) {
  const editable = new Compartment();
  const view = new EditorView({
    parent,
    state: EditorState.create({
      doc: code,
      extensions: [
        lineNumbers(),
        highlightActiveLineGutter(),
        foldGutter(),
        history(),
        drawSelection(),
        indentOnInput(),
        bracketMatching(),
        closeBrackets(),
        highlightActiveLine(),
        highlightSelectionMatches(),
        syntaxHighlighting(defaultHighlightStyle, { fallback: true }),
        javascript(),
        lintGutter(),
        keymap.of([
          ...closeBracketsKeymap,
          ...defaultKeymap,
          ...searchKeymap,
          ...historyKeymap,
          ...lintKeymap,
          indentWithTab,
        ]),
        editable.of(EditorView.editable.of(true)),
        EditorView.cspNonce.of(styleNonce),
        EditorView.contentAttributes.of({ "aria-label": label }),
        EditorView.updateListener.of((update) => {
          if (update.docChanged) onChange(update.state.doc.toString());
        }),
      ],
    }),
  });

  return {
    view,
    getCode: () => view.state.doc.toString(),
    setCode(text) {
      view.dispatch({ changes: { from: 0, to: view.state.doc.length, insert: text } });
    },
    /** Mark problems: [{line, column, message, severity?}] (1-based; [] clears). */
    setProblems(problems) {
      const doc = view.state.doc;
      const diagnostics = problems.map((p) => {
        const from = offsetOf(doc, p.line, p.column);
        const lineEnd = doc.lineAt(from).to;
        const word = /^[\w$]+/.exec(doc.sliceString(from, lineEnd));
        const to = Math.max(Math.min(from + (word ? word[0].length : 1), lineEnd), from);
        return { from, to, severity: p.severity || "error", message: p.message, source: "streamsink" };
      });
      view.dispatch(setDiagnostics(view.state, diagnostics));
    },
    setReadOnly(readOnly) {
      view.dispatch({ effects: editable.reconfigure(EditorView.editable.of(!readOnly)) });
    },
    focus: () => view.focus(),
    destroy: () => view.destroy(),
  };
}
