package wire

import "errors"

// Errors that every decoder in this package wraps; branch on them with errors.Is.
var (
	// ErrMalformed marks input that is not the canonical encoding of a valid value.
	// Every error returned by a Decode function and every protocol violation seen by
	// ReadFrame wraps it; the message says what was wrong.
	ErrMalformed = errors.New("malformed wire data")

	// ErrTooLarge marks input over one of the bounds in types.go. Such errors wrap
	// ErrMalformed too.
	ErrTooLarge = errors.New("wire data over its size limit")
)

// decodeError carries a message that says where the input went wrong, and matches
// ErrMalformed (and ErrTooLarge when a bound was exceeded) under errors.Is.
type decodeError struct {
	msg      string
	tooLarge bool
}

func (e *decodeError) Error() string { return e.msg }

func (e *decodeError) Is(target error) bool {
	return target == ErrMalformed || (e.tooLarge && target == ErrTooLarge)
}
