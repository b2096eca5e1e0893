package wire

import (
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
)

// TestProtobufInterop parses the golden header and key share with the protobuf
// library and the schema doc.go gives, so that any protobuf implementation can read
// what wire writes.
func TestProtobufInterop(t *testing.T) {
	const (
		u64 = descriptorpb.FieldDescriptorProto_TYPE_UINT64
		s64 = descriptorpb.FieldDescriptorProto_TYPE_SINT64
		byt = descriptorpb.FieldDescriptorProto_TYPE_BYTES
	)
	type field struct {
		name string
		typ  descriptorpb.FieldDescriptorProto_Type
		rep  bool
	}
	message := func(name string, fs ...field) *descriptorpb.DescriptorProto {
		m := &descriptorpb.DescriptorProto{Name: proto.String(name)}
		for i, f := range fs {
			label := descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL
			if f.rep {
				label = descriptorpb.FieldDescriptorProto_LABEL_REPEATED
			}
			m.Field = append(m.Field, &descriptorpb.FieldDescriptorProto{
				Name: proto.String(f.name), Number: proto.Int32(int32(i + 1)), Type: f.typ.Enum(), Label: label.Enum(),
			})
		}
		return m
	}
	fd, err := protodesc.NewFile(&descriptorpb.FileDescriptorProto{
		Name:    proto.String("charla_wire_test.proto"),
		Package: proto.String("charla.wire"),
		Syntax:  proto.String("proto3"),
		MessageType: []*descriptorpb.DescriptorProto{
			message("Header",
				field{"version", u64, false}, field{"workspace", byt, false}, field{"author", byt, false},
				field{"seq", u64, false}, field{"prev", byt, false}, field{"lamport", u64, false},
				field{"time", s64, false}, field{"class", u64, false}, field{"room", byt, false},
				field{"key", byt, false}, field{"body", byt, false}),
			message("KeyShare",
				field{"workspace", byt, false}, field{"room", byt, false}, field{"room_kind", u64, false},
				field{"epoch", u64, false}, field{"parent", byt, false}, field{"cause", u64, false},
				field{"recipients", byt, true}, field{"key", byt, false}, field{"disclosed", byt, true},
				field{"all_recipients", byt, true}),
		},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	parse := func(name string, b []byte) protoreflect.Message {
		m := dynamicpb.NewMessage(fd.Messages().ByName(protoreflect.Name(name)))
		if err := proto.Unmarshal(b, m); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return m
	}
	get := func(m protoreflect.Message, name string) protoreflect.Value {
		return m.Get(m.Descriptor().Fields().ByName(protoreflect.Name(name)))
	}

	h := contentHeader()
	hm := parse("Header", h.Marshal())
	if get(hm, "seq").Uint() != h.Seq || get(hm, "time").Int() != h.Time ||
		Class(get(hm, "class").Uint()) != h.Class || string(get(hm, "body").Bytes()) != string(h.Body) {
		t.Errorf("protobuf reads header as %v", hm)
	}

	k := testKeyShare()
	km := parse("KeyShare", k.Marshal())
	recips := get(km, "recipients").List()
	if recips.Len() != len(k.Recipients) || string(recips.Get(2).Bytes()) != string(k.Recipients[2]) ||
		string(get(km, "key").Bytes()) != string(k.Key[:]) || get(km, "epoch").Uint() != k.Epoch {
		t.Errorf("protobuf reads key share as %v", km)
	}
	k = testChunkedShare()
	km = parse("KeyShare", k.Marshal())
	all := get(km, "all_recipients").List()
	if all.Len() != len(k.AllRecipients) || string(all.Get(4).Bytes()) != string(k.AllRecipients[4]) ||
		get(km, "recipients").List().Len() != len(k.Recipients) {
		t.Errorf("protobuf reads chunked key share as %v", km)
	}
}
