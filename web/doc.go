// Package web owns charla's browser UI: static HTML, CSS and JavaScript
// modules, embedded in the binary and served by the local API at "/".
//
// There is no build step and nothing is fetched from the network: the files
// of this directory are what the browser runs. They hold no data; the page reads
// everything through the API (see docs/API.md) with a session token it gets
// by trading the one-time login token in its URL's fragment.
//
// Every string the UI shows is in one catalogue per language, i18n/<lang>.js;
// a new language is a new catalogue listed in i18n/index.js.
package web
