// Preact with htm's tagged templates (no JSX, no build step) and its hooks:
// the one place the pages import their component library from. The import
// map also names this module "htm/preact" (the exports of htm's
// preact/standalone build, which the first foundation commit served there).
import { h, render, Fragment, Component, createContext } from "preact";
import htm from "htm";

export const html = htm.bind(h);
export { h, render, Fragment, Component, createContext };
export {
  useState,
  useReducer,
  useEffect,
  useLayoutEffect,
  useRef,
  useImperativeHandle,
  useMemo,
  useCallback,
  useContext,
  useDebugValue,
  useErrorBoundary,
} from "preact/hooks";
