// Package procstore holds the processes of one analysis while the
// filter replays a capture, and hands them to the output phase after.
//
// A capture of a busy host describes far more processes than are alive
// at any moment. The filter needs each process in full while it can still
// change, which is while it runs and for a while after its end (audit
// records of its last syscalls arrive late); the output needs every
// process once more at the end. The Store keeps each in one of three
// tiers, by capture time since its end:
//
//	alive, or ended less than RetireAfter ago      Stub and State in memory
//	ended less than FinalizeAfter ago (retired)    Stub in memory (88 bytes), State in the spool
//	ended before that (finalized, frozen)          all in the spool; 8 bytes in memory
//
// so that memory follows the processes alive, not the processes seen.
// Options.KeepStates keeps the States of the last few processes to end
// in memory past RetireAfter and Seal: an analysis of fewer processes
// never decodes one from the spool.
// Nothing of this shows in the filter's code: it names processes by
// [Ref], gets them from the Store with [Store.Get] and changes them in
// place, and the Store brings back whatever it sent to the spool and
// sends it back, changes and all, when the event is applied.
//
// The one rule, enforced: processes are got only inside [Store.Update]
// (one event of the replay) or, after [Store.Seal], [Store.View] and
// [Store.All] (the output phase), and a *Proc is valid until that call
// returns. The filter keeps Refs, never pointers, from one event to the
// next. A Proc is a [Stub], what finalizing and the tree need, and a
// [State], the rest; [Store.Stub] reads a Stub without its State, which
// costs a decode.
//
// The spool's records of States and stubs are written and read by one
// codec that visits the fields in one order (codec.go); tests fill every
// field by reflection, so a field added and not encoded fails them.
package procstore
