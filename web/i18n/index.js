// The UI's languages. A new one is a catalogue beside these, with every key
// of en.js, listed here.
import en from "./en.js";
import es from "./es.js";

export const catalogues = [en, es];
