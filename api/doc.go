// Package api owns charla's local HTTP API: the server that exposes a running
// node to the CLI and the web UI on a loopback address, and the Go client the
// CLI uses.
//
// # Who may call it
//
// The API listens on 127.0.0.1 or [::1] only (see Listen). A running node
// writes <home>/api.json (mode 0600) holding the API's address and a random
// token (see Info). Every request must pass, in this order:
//
//   - Host must be exactly 127.0.0.1:P, localhost:P or [::1]:P, where P is the
//     port the request arrived on; anything else is 403. This defeats DNS
//     rebinding: a page on evil.example resolved to 127.0.0.1 still sends
//     Host: evil.example.
//   - Origin, when present, must be http:// followed by one of those hosts;
//     anything else (including "null") is 403. Browsers send Origin on
//     cross-origin requests, so no other page can drive the API.
//   - Authorization must be "Bearer TOKEN" with the token from api.json or
//     a session token of the web UI, compared in constant time; otherwise
//     401. The web UI's files (every path outside /api/) and POST
//     /api/session need none.
//
// GET requests never change anything. Request bodies are JSON, at most
// MaxBodyBytes, with Content-Type application/json, decoded strictly (unknown
// fields and trailing data are refused).
//
// # Endpoints
//
//	GET  /api/status                      node.Status
//	GET  /api/rooms                       [node.Room]
//	GET  /api/members                     [node.Member]
//	GET  /api/peers                       [node.Peer]
//	GET  /api/doctor                      node.DoctorReport (checks probe the network: slow)
//	GET  /api/rooms/{room}/messages?limit=N
//	                                      [node.Message], the N newest (default
//	                                      DefaultLogLimit), oldest first
//	POST /api/rooms/{room}/messages       {"text": "..."} → 201 node.Message
//	POST /api/rooms/{room}/files          {"path": "/abs/path"} → 201 node.File
//	GET  /api/files?room=ROOM             [node.File], newest first; every room without room=
//	GET  /api/files/{id}                  node.File (state, have_bytes: poll it for progress)
//	POST /api/files/{id}/get              {"path": "/abs/out"} → 200 node.File once the
//	                                      file is complete, verified and written
//	POST /api/files/{id}/fetch            {} → 200 node.File once every chunk is held on
//	                                      the node, verified (kept for offline use)
//	POST /api/invites                     {"expires": "24h"} → 201 {"code": "..."}
//	POST /api/rooms/{room}/typing         {} → 200 {"sent": bool}, at most one signal per node.TypingEvery
//	GET  /api/rooms/{room}/read           node.ReadState
//	POST /api/rooms/{room}/read           {"message": "ID"} → 200 node.ReadState
//	POST /api/presence                    {"state": "online" | "away"} → 200 the same
//	GET  /api/events                      server-sent events, below
//	POST /api/login-urls                  {} → 201 {"url": "http://127.0.0.1:P/#login=..."}
//	POST /api/session                     {"login": "..."} → 201 {"token": "..."}
//	GET  /, /app.js, ...                  the web UI (package web)
//
// {room} is one URL-escaped path segment naming a room as node.Backend.Send
// accepts it: "general", "#general" (%23general), a hex room ID, "@Name" or
// "@<peer ID>". The "expires" of an invite is a Go duration; it defaults to
// DefaultInviteExpiry.
//
// File requests carry paths, not bytes: the API serves clients on the node's
// own machine, so the node reads the file to post and writes the file fetched
// itself. Paths must be absolute. A backend that is not a node.FileBackend
// answers them 501.
//
// # The web UI's login
//
// The UI's URL carries a one-time login token in its fragment (see
// NewLoginURL; 'charla run' prints one, 'charla ui' asks for one). The page
// trades it with POST /api/session for a session token, kept in
// sessionStorage and sent as Authorization; no cookies, which every port on
// 127.0.0.1 would share. A login token works once, within LoginExpiry;
// session tokens last until the server stops. docs/API.md has the details.
//
// # Events
//
// GET /api/events answers text/event-stream. Each node.Event is one frame
//
//	event: <event type, e.g. message>
//	data: <the node.Event as JSON on one line>
//
// followed by an empty line. A comment line (": ping") is sent every 15
// seconds so that idle connections stay open and dead ones are noticed.
//
// # Errors
//
// A failed request answers a JSON object {"error": "...", "hint": "..."}
// (hint may be absent). Errors from the node map to statuses by their
// sentinel: node.ErrInvalid → 400, node.ErrUnknownRoom, node.ErrUnknownFile and
// node.ErrUnknownMessage → 404, node.ErrAmbiguous → 409, anything else → 500. The
// client returns them as *Error, which matches those sentinels with errors.Is.
package api
