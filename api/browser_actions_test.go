package api

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestBrowserActions: in the web UI, Bruno replies to Ana's message, Ana
// reacts to it, edits it and deletes it, and each change shows on the other
// page.
func TestBrowserActions(t *testing.T) {
	exe, ana, bruno := browserOffice(t)
	ctx := context.Background()
	m, err := ana.node.Send(ctx, "general", "Lunch at one?")
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "Bruno holds the message", func() bool {
		log, _ := bruno.node.Log(ctx, "general", 10)
		return len(log) > 0 && log[len(log)-1].ID == m.ID
	})
	pa := openPage(t, exe, "Ana's page", ana)
	pb := openPage(t, exe, "Bruno's page", bruno)
	sel := fmt.Sprintf(`document.querySelector('article[data-id="%s"]')`, m.ID)
	pb.waitFor("the message is shown", hasMessage("Lunch at one?"))
	pa.waitFor("the message is shown", hasMessage("Lunch at one?"))

	// Bruno replies.
	pb.eval("click reply", sel+`.querySelector(".act-reply").click() ?? true`)
	pb.waitFor("the composer says whom it answers", `!document.querySelector("#compose-bar").hidden && document.querySelector("#compose-bar").textContent.includes("Ana")`)
	pb.do("type the reply", chromedp.SendKeys(chromedp.CSS("#text"), "Yes, at the usual place"), pressEnter(false))
	pb.waitFor("the compose bar goes", `document.querySelector("#compose-bar").hidden`)
	pa.waitFor("the reply shows its quote", `[...document.querySelectorAll(".msg .quote")].some(e => e.textContent.includes("Lunch at one?")) && `+hasMessage("Yes, at the usual place"))

	// Ana reacts.
	pa.eval("open the picker", sel+`.querySelector(".act-react").click() ?? true`)
	pa.eval("pick 👍", sel+`.querySelector(".picker .emoji").click() ?? true`)
	pa.waitFor("her reaction is marked hers", sel+`?.querySelector(".reaction.mine")?.textContent === "👍 1"`)
	pb.waitFor("the reaction is counted", sel+`?.querySelector(".reaction")?.textContent === "👍 1"`)
	pb.eval("Bruno adds his", sel+`.querySelector(".reaction").click() ?? true`)
	pa.waitFor("two 👍", sel+`?.querySelector(".reaction")?.textContent === "👍 2"`)

	// Ana edits.
	pa.eval("click edit", sel+`.querySelector(".act-edit").click() ?? true`)
	pa.waitFor("the composer holds the text", `document.querySelector("#text").value === "Lunch at one?"`)
	pa.eval("clear it", `(document.querySelector("#text").value = "", true)`)
	pa.do("type the new text", chromedp.SendKeys(chromedp.CSS("#text"), "Lunch at two?"), pressEnter(false))
	pb.waitFor("the edit shows", hasMessage("Lunch at two?")+` && !!`+sel+`?.querySelector(".edited")`)
	pb.waitFor("the reply's quote follows", `[...document.querySelectorAll(".msg .quote")].some(e => e.textContent.includes("Lunch at two?"))`)

	// Ana deletes.
	pa.eval("confirm without a dialog", `(window.confirm = () => true, true)`)
	pa.eval("click delete", sel+`.querySelector(".act-delete").click() ?? true`)
	pb.waitFor("the message shows as deleted", sel+`?.querySelector(".deleted") && !`+hasMessage("Lunch at two?"))
	pb.waitFor("the reactions go", `!`+sel+`.querySelector(".reaction")`)

	pa.checkErrors()
	pb.checkErrors()
}
