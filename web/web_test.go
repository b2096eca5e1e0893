package web

import (
	"io/fs"
	"regexp"
	"slices"
	"strings"
	"testing"
)

func read(t *testing.T, name string) string {
	t.Helper()
	data, err := fs.ReadFile(FS(), name)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// catalogueKeys returns the keys of a catalogue's strings: the properties
// indented by four spaces, as the catalogues are written.
func catalogueKeys(t *testing.T, name string) []string {
	t.Helper()
	var keys []string
	for _, m := range regexp.MustCompile(`(?m)^    (\w+):`).FindAllStringSubmatch(read(t, name), -1) {
		keys = append(keys, m[1])
	}
	if len(keys) < 10 {
		t.Fatalf("%s: found only %d keys; is it still written one key a line?", name, len(keys))
	}
	slices.Sort(keys)
	return keys
}

// TestCatalogues checks that every language has every string, and that
// every string the page asks for is in the English catalogue.
func TestCatalogues(t *testing.T) {
	en := catalogueKeys(t, "i18n/en.js")
	index := read(t, "i18n/index.js")
	cats, err := fs.Glob(FS(), "i18n/*.js")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range cats {
		if name == "i18n/index.js" {
			continue
		}
		if !strings.Contains(index, `"./`+strings.TrimPrefix(name, "i18n/")+`"`) {
			t.Errorf("%s is not listed in i18n/index.js", name)
		}
		if got := catalogueKeys(t, name); !slices.Equal(got, en) {
			t.Errorf("%s has keys %v,\nen.js has %v", name, got, en)
		}
	}

	var used []string
	for _, m := range regexp.MustCompile(`\bt\("(\w+)"[,)]`).FindAllStringSubmatch(read(t, "app.js"), -1) {
		used = append(used, m[1])
	}
	for _, m := range regexp.MustCompile(`data-i18n(?:-aria|-title|-placeholder)?="(\w+)"`).FindAllStringSubmatch(read(t, "index.html"), -1) {
		used = append(used, m[1])
	}
	if len(used) < 10 {
		t.Fatalf("found only %d strings in use", len(used))
	}
	for _, key := range used {
		if _, ok := slices.BinarySearch(en, key); !ok {
			t.Errorf("the page uses string %q, which en.js lacks", key)
		}
	}
}

// TestNoInlineScript keeps index.html within its Content-Security-Policy:
// scripts come from files, and no element carries an event handler.
func TestNoInlineScript(t *testing.T) {
	html := read(t, "index.html")
	for _, tag := range regexp.MustCompile(`<script[^>]*>`).FindAllString(html, -1) {
		if !strings.Contains(tag, ` src="`) {
			t.Errorf("inline script %s", tag)
		}
	}
	if m := regexp.MustCompile(`\son\w+=`).FindString(html); m != "" {
		t.Errorf("inline event handler %q", m)
	}
	if strings.Contains(html, "style=") {
		t.Error("inline style attribute")
	}
	if !strings.Contains(contentSecurityPolicy, "default-src 'self'") {
		t.Errorf("policy %q", contentSecurityPolicy)
	}
}

// TestNoInnerHTML keeps user text out of the HTML parser: app.js builds
// elements and text nodes only.
func TestNoInnerHTML(t *testing.T) {
	js := read(t, "app.js")
	for _, bad := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("} {
		if strings.Contains(js, bad) {
			t.Errorf("app.js uses %s", bad)
		}
	}
}
