// Package webdriver drives real browsers for the web UI's tests, over the
// two W3C protocols the browsers Debian ships speak without a separate
// driver download: Firefox over WebDriver BiDi (a WebSocket Firefox opens
// itself, https://w3c.github.io/webdriver-bidi/), and WebKitGTK, Safari's
// engine, over WebDriver classic (HTTP and JSON, served by WebKitWebDriver,
// https://w3c.github.io/webdriver/).
//
// Both browsers offer the same small surface: Navigate, Eval, Click, Keys,
// SetFiles, Errors and Close. Keys are typed as real key events (the
// actions of the specifications), so a page's keydown handlers run as they
// do for a person; Enter, Shift, Tab and the others are the
// specifications' code points below. Click moves the mouse and presses its
// button where the element is, and refuses when something covers it.
//
// Errors come from BiDi's log for Firefox, from the page's first line on.
// WebDriver classic has no log, so for WebKit a script that Navigate runs
// after the load records them: an error thrown while the page loads is not
// seen there (a page that fails to start fails the test's next check).
//
// Each browser gets a fresh profile and home in a temporary directory, and
// settings that keep it on loopback: for Firefox no updates, telemetry,
// remote settings, safe-browsing lists or captive-portal probes, and for
// both a proxy on a closed loopback port for anything that is not
// 127.0.0.1. Close ends every process it started and
// removes the directory.
//
// It is not a _test.go file so that tests of several packages can use it,
// and it does not import "testing" (STYLE.md).
package webdriver
