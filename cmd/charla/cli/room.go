package cli

import (
	"context"
	"flag"
	"fmt"

	"github.com/charla-im/charla/api"
	"github.com/charla-im/charla/node"
)

func roomCommand() *command {
	var members stringsFlag
	var all, private, noHistory, asJSON bool
	return &command{
		name:  "room",
		args:  "create NAME [--member NAME_OR_PEER]... [--all] [--no-history] [--json] | add|remove ROOM NAME_OR_PEER | leave ROOM",
		short: "create a room; add or remove a member; leave one",
		long: `room create makes a channel called NAME that only the members named with
--member (by display name or peer ID, repeatable) and you can read; the
others hold only its ciphertext. With --all it is for every current member
instead. --private is accepted and changes nothing: it is the default. With
--no-history, members added later read only what is said from their joining
on (each addition shares a new key). With
--json it prints the room as one JSON object: id, name, kind, members.

room add ROOM NAME_OR_PEER lets a member read ROOM, history included. room
remove ROOM NAME_OR_PEER (admins) takes one out: the room gets a new key at
once, so nothing said afterwards reaches it. room leave ROOM takes you out;
the next member to write rotates the key.`,
		flags: func(fs *flag.FlagSet) {
			fs.Var(&members, "member", "let `NAME_OR_PEER` read the room; repeatable")
			fs.BoolVar(&all, "all", false, "make the room for every current member")
			fs.BoolVar(&private, "private", false, "only the members named (the default)")
			fs.BoolVar(&noHistory, "no-history", false, "members added later do not read earlier history")
			fs.BoolVar(&asJSON, "json", false, "print one JSON object")
		},
		run: func(ctx context.Context, e *env, args []string) error {
			if len(args) > 0 && (args[0] == "add" || args[0] == "remove" || args[0] == "leave") {
				return roomChange(ctx, e, args, asJSON)
			}
			if len(args) == 0 || args[0] != "create" {
				return e.usagef("room needs a subcommand: create, add, remove or leave")
			}
			if len(args) != 2 {
				return e.usagef("room create needs one name, got %q", args[1:])
			}
			if all && (private || len(members) > 0) {
				return e.usagef("--all is for every member: name no --member, nor --private, with it")
			}
			c, err := e.client()
			if err != nil {
				return err
			}
			room, err := c.CreateRoomWith(ctx, api.CreateRoomRequest{Name: args[1], Members: members, All: all, NoHistory: noHistory})
			if err != nil {
				return e.apiError(err)
			}
			if asJSON {
				return printJSON(e.stdout, room)
			}
			_, err = fmt.Fprintf(e.stdout, "#%s  %d members  %s\n", clean(room.Name), len(room.Members), room.ID)
			return err
		},
	}
}

// roomChange runs room add|remove ROOM MEMBER and room leave ROOM.
func roomChange(ctx context.Context, e *env, args []string, asJSON bool) error {
	want := 3
	if args[0] == "leave" {
		want = 2
	}
	if len(args) != want {
		return e.usagef("room %s needs %d arguments, got %q", args[0], want-1, args[1:])
	}
	c, err := e.client()
	if err != nil {
		return err
	}
	var room node.Room
	switch args[0] {
	case "add":
		room, err = c.RoomAdd(ctx, args[1], args[2])
	case "remove":
		room, err = c.RoomRemove(ctx, args[1], args[2])
	case "leave":
		room, err = c.RoomLeave(ctx, args[1])
	}
	if err != nil {
		return e.apiError(err)
	}
	if asJSON {
		return printJSON(e.stdout, room)
	}
	_, err = fmt.Fprintf(e.stdout, "#%s  %d members  %s\n", clean(room.Name), len(room.Members), room.ID)
	return err
}
