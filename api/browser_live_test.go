package api

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestBrowserPaging: a room with more history than three pages opens at its
// newest page; scrolling to the top brings each page above with ?before=,
// never the whole room, and keeps in view the message the reader was at,
// until the start of the room.
func TestBrowserPaging(t *testing.T) {
	exe, ana, bruno := browserOffice(t)
	ctx := context.Background()
	const total = 130 // pages of 50: 50 shown, then 50 and 30 read back
	for i := range total {
		if _, err := ana.node.Send(ctx, "general", fmt.Sprintf("history %03d", i)); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 60*time.Second, "Bruno holds the whole history", func() bool {
		log, _ := bruno.node.Log(ctx, "general", total+10)
		return len(log) == total
	})
	pb := openPage(t, exe, "Bruno's page", bruno)
	pb.eval("record the page's requests", `(() => {
		window.asked = [];
		const f = window.fetch;
		window.fetch = (url, init) => { window.asked.push(String(url)); return f(url, init); };
		return true;
	})()`)
	pb.waitFor("the newest page is shown", hasMessage("history 129")+` && `+hasMessage("history 080"))
	pb.eval("and only it", `document.querySelectorAll("#messages article").length === 50 && !`+hasMessage("history 079"))

	for page, oldest := range []string{"history 030", "history 000"} {
		// The first message in view before the page above comes, and where.
		pb.eval("scroll to the top", `(() => {
			const box = document.querySelector("#messages");
			box.scrollTop = 0;
			const top = box.getBoundingClientRect().top;
			const first = [...box.querySelectorAll("article")].find((a) => a.getBoundingClientRect().bottom > top);
			window.anchor = { id: first.dataset.id, offset: first.getBoundingClientRect().top - top };
			return true;
		})()`)
		pb.waitFor(fmt.Sprintf("page %d above is shown", page+2), hasMessage(oldest))
		pb.waitFor("the message in view stays in view, where it was", `(() => {
			const box = document.querySelector("#messages");
			const a = box.querySelector('article[data-id="' + window.anchor.id + '"]');
			const offset = a.getBoundingClientRect().top - box.getBoundingClientRect().top;
			return Math.abs(offset - window.anchor.offset) < 4 && box.scrollTop > 200;
		})()`)
	}
	pb.waitFor("the start of the room is shown", `[...document.querySelectorAll("#messages .note")].some((n) => n.textContent === "This is the start of #general.")`)
	got, err := chromedp.Run(pb.ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll("#messages .msg .body")].map((b) => b.textContent)`))
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for i := range total {
		want = append(want, fmt.Sprintf("history %03d", i))
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("after reading back, the room shows %d messages:\n%q", len(got), got)
	}
	asked, err := chromedp.Run(pb.ctx, chromedp.Evaluate[[]string](`window.asked.filter((u) => u.includes("/messages?"))`))
	if err != nil {
		t.Fatal(err)
	}
	before := 0
	for _, u := range asked {
		if !strings.Contains(u, "limit=50") {
			t.Errorf("asked for more than a page: %s", u)
		}
		if strings.Contains(u, "&before=") {
			before++
		}
	}
	if before != 2 {
		t.Errorf("asked %d times with before= for two pages: %q", before, asked)
	}
	pb.checkErrors()
}

// TestBrowserMentionsTypingAndReads: Ana types in #general and Bruno's page
// says so; she picks Bruno from the @ list, and her message reaches him,
// while he reads another room, as a notification, a mention badge and the
// unread count in the tab title, then highlighted; his read marker shows
// on her page as "Seen by"; and his away shows in her members list.
func TestBrowserMentionsTypingAndReads(t *testing.T) {
	exe, ana, bruno := browserOffice(t)
	ctx := context.Background()
	if _, err := ana.node.Send(ctx, "general", "Morning, all"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "Bruno holds it", func() bool {
		log, _ := bruno.node.Log(ctx, "general", 5)
		return len(log) == 1
	})
	pa := openPage(t, exe, "Ana's page", ana)
	pb := openPage(t, exe, "Bruno's page", bruno)
	pb.eval("catch notifications", `(() => {
		window.notes = [];
		window.Notification = class {
			static permission = "granted";
			static requestPermission() { return Promise.resolve("granted"); }
			constructor(title, opts) { window.notes.push({ title, body: opts.body }); }
		};
		return true;
	})()`)
	pb.waitFor("the history is shown", hasMessage("Morning, all"))

	// A direct message, while Bruno reads #general: notified.
	if _, err := ana.node.Send(ctx, "@Bruno", "Do you have a minute?"); err != nil {
		t.Fatal(err)
	}
	pb.waitFor("the direct message is notified", `window.notes.some((n) => n.title === "Ana" && n.body === "Do you have a minute?")`)

	// Ana types: Bruno sees it. The ephemeral topic's mesh may take a
	// heartbeat to form, and the page sends one signal per 3 s while she
	// types, so she goes on typing until he sees it.
	pa.do("type", chromedp.SendKeys(chromedp.CSS("#text"), "Hello @Bru"))
	pa.waitFor("the @ list offers Bruno", `(() => {
		const l = document.querySelector("#mention-list");
		return !l.hidden && [...l.querySelectorAll("[role=option]")].map((o) => o.textContent).join() === "Bruno" &&
			document.querySelector("#text").getAttribute("aria-activedescendant") === "mention-0";
	})()`)
	seen := false
	for i := 0; i < 10 && !seen; i++ {
		if i > 0 {
			pa.do("type on", chromedp.SendKeys(chromedp.CSS("#text"), "n"), chromedp.KeyEvent("\b"))
		}
		ok, _ := chromedp.Run(pb.ctx, chromedp.Poll[bool](`document.querySelector("#typing").textContent === "Ana is typing…"`,
			chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(3500*time.Millisecond)))
		seen = ok
	}
	if !seen {
		t.Fatal("Bruno's page never said that Ana is typing")
	}
	pa.do("pick Bruno with Tab", chromedp.KeyEvent("\t"))
	pa.waitFor("the mention is written out", `document.querySelector("#text").value === "Hello @Bruno " && document.querySelector("#mention-list").hidden`)

	// Bruno goes to the direct room; Ana mentions him in #general.
	pb.do("open the direct room", chromedp.Click(chromedp.CSS("#directs button")))
	pb.waitFor("the direct room is shown", hasMessage("Do you have a minute?")+` && document.querySelector("#typing").textContent === ""`)
	pa.do("finish and send", chromedp.SendKeys(chromedp.CSS("#text"), "can you check the printer?"), pressEnter(false))
	pb.waitFor("the mention is counted in the title and marked in the sidebar", `(() => {
		const b = [...document.querySelectorAll("#channels button")].find((b) => b.textContent.startsWith("#general"));
		return document.title.startsWith("(1) ") && b.querySelector(".badge.mention") &&
			b.getAttribute("aria-label").includes("mentions you");
	})()`)
	pb.waitFor("the mention is notified", `window.notes.some((n) => n.title === "Ana mentioned you in #general" && n.body === "Hello @Bruno can you check the printer?")`)
	pb.do("open #general", chromedp.Click(chromedp.CSS("#channels button")))
	pb.waitFor("the message is highlighted for him", `(() => {
		const m = [...document.querySelectorAll("article.mention-me")].find((a) => a.textContent.includes("check the printer"));
		return m && m.querySelector(".mention.me")?.textContent === "@Bruno" && !document.title.startsWith("(");
	})()`)
	pa.waitFor("Ana sees the mention, not as one of hers", `(() => {
		const m = [...document.querySelectorAll("article")].find((a) => a.textContent.includes("check the printer"));
		return m && !m.classList.contains("mention-me") && m.querySelector(".mention:not(.me)")?.textContent === "@Bruno";
	})()`)
	pa.waitFor("Bruno's read marker shows under her message", `(() => {
		const m = [...document.querySelectorAll("article")].find((a) => a.textContent.includes("check the printer"));
		return m && m.querySelector(".seen")?.textContent === "Seen by Bruno";
	})()`)

	if err := bruno.node.SetPresence(ctx, "away"); err != nil {
		t.Fatal(err)
	}
	pa.waitFor("Bruno is shown away", `[...document.querySelectorAll("#member-list button")].some((b) =>
		b.getAttribute("aria-label") === "Bruno, away" && b.querySelector(".dot.away"))`)

	pb.checkErrors()
	// Bruno's computer stops: Ana's page says nobody is reachable, and
	// shows him offline once his heartbeats stop.
	bruno.node.Close()
	pa.waitFor("the banner says no colleague is reachable", `[...document.querySelectorAll("#banners .banner")].some((b) => b.textContent.startsWith("No colleague is reachable"))`)
	pa.waitFor("Bruno is shown offline", `[...document.querySelectorAll("#member-list button")].some((b) =>
		b.getAttribute("aria-label") === "Bruno, offline" && b.querySelector(".dot.offline"))`)
	pa.checkErrors()
}

// TestBrowserOfficeTasks: Ana creates a room for Bruno and herself from the
// sidebar, makes an invite code, renames herself, and, as the owner, makes
// Bruno an admin and then removes him; Bruno, a member, gets no such tools.
func TestBrowserOfficeTasks(t *testing.T) {
	exe, ana, bruno := browserOffice(t)
	pa := openPage(t, exe, "Ana's page", ana)
	pb := openPage(t, exe, "Bruno's page", bruno)

	pa.do("open the room dialog", chromedp.Click(chromedp.CSS("#new-room")))
	pa.waitFor("the dialog is open", `document.querySelector("#room-dialog").open && document.activeElement.id === "room-name"`)
	pa.do("name the room", chromedp.SendKeys(chromedp.CSS("#room-name"), "ventas"))
	pa.eval("only Bruno", `(() => {
		document.querySelector("#room-some").click();
		const b = [...document.querySelectorAll("#room-pick label")].find((l) => l.textContent.trim() === "Bruno");
		b.querySelector("input").click();
		return !document.querySelector("#room-pick").disabled;
	})()`)
	pa.do("create it", chromedp.Click(chromedp.CSS(`#room-form button[type=submit]`)))
	pa.waitFor("the new room is open", `!document.querySelector("#room-dialog").open && document.querySelector("#room-title").textContent === "#ventas"`)
	pb.waitFor("Bruno has the room", `[...document.querySelectorAll("#channels button")].some((b) => b.textContent === "#ventas")`)

	pa.do("open the invite dialog", chromedp.Click(chromedp.CSS("#invite")))
	pa.waitFor("the owner may invite an admin", `!document.querySelector("#invite-role-row").hidden`)
	pa.do("make a code", chromedp.Click(chromedp.CSS(`#invite-form button[type=submit]`)))
	pa.waitFor("the code is shown, ready to copy", `(() => {
		const c = document.querySelector("#invite-code").value;
		return c.startsWith("charla-invite-") && !document.querySelector("#invite-result").hidden &&
			document.querySelector("#invite-join").textContent === "charla join " + c;
	})()`)
	pa.do("close it", chromedp.Click(chromedp.CSS(`#invite-form .cancel`)))

	pa.do("open the name dialog", chromedp.Click(chromedp.CSS("#self-name")))
	pa.eval("write a new name", `(document.querySelector("#new-name").value = "Ana María", true)`)
	pa.do("save it", chromedp.Click(chromedp.CSS(`#name-form button[type=submit]`)))
	pa.waitFor("the new name is hers", `!document.querySelector("#name-dialog").open && document.querySelector("#self-name").textContent === "Ana María"`)
	pb.waitFor("Bruno sees her new name", `[...document.querySelectorAll("#member-list .member-name")].some((n) => n.textContent === "Ana María")`)

	pb.eval("Bruno, a member, may manage no one", `document.querySelectorAll("#member-list .manage").length === 0`)
	pa.waitFor("Ana, the owner, may manage Bruno", `!!document.querySelector('#member-list .manage[aria-label="Manage Bruno"]')`)
	pa.do("open Bruno's tools", chromedp.Click(chromedp.CSS(`#member-list .manage`)))
	pa.waitFor("promote and remove are offered", `[...document.querySelectorAll("#member-list .member-tools button")].map((b) => b.textContent).join() === "Make admin,Remove from the office"`)
	pa.do("make him admin", chromedp.Click(chromedp.CSS(`#member-list .member-tools button`)))
	pa.waitFor("Bruno is an admin", `[...document.querySelectorAll("#member-list li")].some((l) =>
		l.querySelector(".member-name")?.textContent === "Bruno" && l.querySelector(".role")?.textContent === "admin")`)
	pa.waitFor("he can be made a member again", `[...document.querySelectorAll("#member-list .member-tools button")].map((b) => b.textContent).join() === "Make member,Remove from the office"`)
	pa.eval("confirm without a dialog", `(window.confirm = () => true, true)`)
	pa.do("remove him", chromedp.Click(chromedp.CSS(`#member-list .member-tools button.danger`)))
	pa.waitFor("Bruno is no longer listed", `![...document.querySelectorAll("#member-list .member-name")].some((n) => n.textContent === "Bruno")`)

	pa.checkErrors()
	pb.checkErrors()
}
