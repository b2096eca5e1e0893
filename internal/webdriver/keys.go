package webdriver

import (
	"encoding/json"
	"fmt"
	"strings"
)

// Keys that are not characters, as the WebDriver specification's
// "keyboard actions" table numbers them in Unicode's private use area.
// Both protocols take the same code points.
const (
	Backspace = "\uE003"
	Tab       = "\uE004"
	Enter     = "\uE007"
	Shift     = "\uE008"
	Control   = "\uE009"
	ArrowUp   = "\uE013"
)

// isModifier reports whether a key is held rather than pressed.
func isModifier(r rune) bool {
	return r == '\uE008' || r == '\uE009' || r == '\uE00A' || r == '\uE03D' // Shift, Control, Alt, Meta
}

// keyActions is one "key" input source that types keys: each key is
// pressed and released in turn, and a modifier is held down over the next
// other key only, so Shift+Enter+"c" is Shift+Enter, then c. The same
// JSON serves BiDi's input.performActions and classic's Perform Actions.
func keyActions(keys string) []any {
	var steps []map[string]any
	var held []string
	for _, r := range keys {
		k := string(r)
		steps = append(steps, map[string]any{"type": "keyDown", "value": k})
		if isModifier(r) {
			held = append(held, k)
			continue
		}
		steps = append(steps, map[string]any{"type": "keyUp", "value": k})
		for i := len(held) - 1; i >= 0; i-- {
			steps = append(steps, map[string]any{"type": "keyUp", "value": held[i]})
		}
		held = held[:0]
	}
	for i := len(held) - 1; i >= 0; i-- {
		steps = append(steps, map[string]any{"type": "keyUp", "value": held[i]})
	}
	return []any{map[string]any{"type": "key", "id": "keyboard", "actions": steps}}
}

// clickActions is one mouse that moves to (x, y) in the viewport and
// clicks with its main button.
func clickActions(x, y int) []any {
	return []any{map[string]any{
		"type": "pointer", "id": "mouse", "parameters": map[string]string{"pointerType": "mouse"},
		"actions": []map[string]any{
			{"type": "pointerMove", "x": x, "y": y, "origin": "viewport"},
			{"type": "pointerDown", "button": 0},
			{"type": "pointerUp", "button": 0},
		},
	}}
}

// centerScript is an expression that scrolls the element of a CSS
// selector to the middle of its scrolling box, waits until it stays in
// place (a page may re-render or scroll in answer to the scroll), and
// returns its center in the viewport. It throws if no element matches, or
// if another element covers that point (a click would reach that one
// instead: WebDriver's "element click intercepted").
func centerScript(selector string) string {
	return fmt.Sprintf(`(async () => {
		const find = () => {
			const e = document.querySelector(%s);
			if (!e) throw new Error("no element matches " + %[1]s);
			return e;
		};
		find().scrollIntoView({ block: "center", inline: "center" });
		let last = "";
		for (let i = 0; i < 40; i++) {
			await new Promise((resolve) => setTimeout(resolve, 25));
			const e = find(), r = e.getBoundingClientRect();
			const x = Math.round(r.left + r.width / 2), y = Math.round(r.top + r.height / 2);
			if (last !== x + "," + y) {
				last = x + "," + y;
				continue;
			}
			const hit = document.elementFromPoint(x, y);
			if (!e.contains(hit)) throw new Error(%[1]s + " is covered by " + (hit ? hit.outerHTML.slice(0, 200) : "nothing") + " at " + last);
			return [x, y];
		}
		throw new Error(%[1]s + " does not stay in place");
	})()`, quote(selector))
}

// focusScript is an expression that focuses the element of a CSS selector,
// or throws.
func focusScript(selector string) string {
	return fmt.Sprintf(`(() => {
		const e = document.querySelector(%s);
		if (!e) throw new Error("no element matches " + %[1]s);
		e.focus();
		return document.activeElement === e;
	})()`, quote(selector))
}

// quote is a JavaScript string literal of s.
func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// isConsoleError says whether a console line reports an error the tests
// should see: an uncaught exception, a rejected promise nobody handled, or
// a Content-Security-Policy violation (which browsers log as warnings or
// errors depending on the engine).
func isConsoleError(level, text string) bool {
	return level == "error" || strings.Contains(text, "Content-Security-Policy") ||
		strings.Contains(text, "Content Security Policy")
}
