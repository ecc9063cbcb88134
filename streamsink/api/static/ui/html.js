// Preact with htm's tagged templates (no JSX, no build step) and its hooks:
// the one place the pages import their component library from.
import { h, render, Fragment } from "preact";
import htm from "htm";

export const html = htm.bind(h);
export { h, render, Fragment };
export { useState, useEffect, useRef, useCallback, useMemo, useReducer, useContext } from "preact/hooks";
