// Package bench holds charla's benchmarks of whole nodes: many real nodes in
// one process on 127.0.0.1, measured against bare go-libp2p-pubsub on the
// same topology.
//
// BenchmarkFanout is a fixed workload that takes three or four minutes on two
// cores (a minute or so without its burst phase), not a loop to be scaled by
// b.N: run it once, without -short (which skips it) and without -race (which
// slows SQLite 20–35×):
//
//	go test -run='^$' -bench=Fanout -benchtime=1x ./bench
//	CHARLA_BENCH_NO_BURST=1 go test -run='^$' -bench=Fanout -benchtime=1x ./bench  # steady phase only
//
// Ten nodes (the topology is described at fanoutEdges), one of them
// publishing 2,000 text messages of 1 KiB into #general as fast as Send
// returns, the other nine counting what their Subscribe delivers, whether
// gossip or sync brought it. Its metrics:
//
//	charla-msgs/s           2,000 / (last delivery on any receiver − first send),
//	                        or the mean count delivered per receiver over that
//	                        time when some never arrived
//	bare-msgs/s             the same for bare GossipSub
//	ratio                   charla-msgs/s / bare-msgs/s
//	charla-p50-ms, -p99-ms  send-to-delivery latency over every delivery
//	                        (receivers × messages), from the time stamped in the
//	                        text just before Send to the Subscribe event
//	charla-delivered-%      deliveries / (9 receivers × 2,000)
//	bare-delivered-%        the same for bare GossipSub
//	charla-cpu-us/delivery  process CPU (user + system) from the first send
//	                        until every message arrived (or the deadline, 60 s
//	                        after the last send), divided by the deliveries
//	bare-p50-ms, -p99-ms    bare GossipSub's latencies, for comparison
//	bare-cpu-us/delivery    bare GossipSub's CPU per delivery
//
// The burst phase follows (skipped when CHARLA_BENCH_NO_BURST is set to
// anything). It publishes 2,000 messages of 1 KiB from the same member at
// 500 a second, sent by 16 goroutines, once over ten fresh bare GossipSub
// hosts that keep pubsub's default queues (outbound 32 per peer, validation
// 32, subscription buffer 32: no queue options passed), and once more over
// the ten charla nodes of the first phase, whose queues are sized
// deliberately and whose sync repairs what gossip lost (a pull 2 s after a
// gap, a presence heartbeat with a vector digest every 5 s, a pull every
// 30 s). 500/s is a rate where bare GossipSub loses messages on this
// machine (it kept all at 170/s, lost 14% at 400/s). Bare GossipSub gets
// 20 s after its last publish; charla 60 s after its last send, time for two
// periodic pulls. Its metrics:
//
//	bare-burst-delivered-%    deliveries / (9 receivers × 2,000) on default
//	                          queues; Publish returned nil for every message
//	charla-burst-delivered-%  the same for charla, after repair: must be 100
//	charla-burst-repaired     charla deliveries that arrived more than 2 s
//	                          after the last send returned, which gossip did not
//	                          bring in time; repairs made while the burst was
//	                          still being sent are not in it
//	charla-burst-complete-s   last send returned → last delivery on any
//	                          receiver; only when every message arrived
//	charla-burst-synced       envelopes that sync pulls carried to the receivers
//	                          during the burst, from the nodes' progress
//	                          events; a pull sends everything above the
//	                          puller's contiguous head, so this counts envelopes
//	                          that gossip brought too: sync traffic, not repairs
//	bare-burst-drops          messages GossipSub dropped from a full queue,
//	                          summed over the hosts: outbound RPCs, deliveries
//	                          to a slow subscription, validation queue full
//	charla-burst-drops        the same from charla's drop counters (outbound
//	                          and subscription; its validation drops are not
//	                          told apart from ignored duplicates)
//	bare-burst-sends/s        2,000 / time the publisher took to publish them
//	charla-burst-sends/s      the same for charla's Send: at 500 only if
//	                          charla keeps the pace
//	bare-at-charla-rate-delivered-%, -sends/s
//	                          bare GossipSub once more, on default queues, at
//	                          the rate charla's burst did send: both seen at
//	                          one rate even when charla falls short of 500
//
// Bare GossipSub on a quiet machine loses nothing at the rate charla's
// sends reach (every node's CPU here is on two cores). So the burst runs a
// third time on both at once: the ten charla nodes and ten fresh bare hosts
// on default queues, each message published on bare as charla's send of it
// returns (one rate by construction) while both networks share the
// machine, as a busy office PC is shared. Its metrics:
//
//	together-sends/s          the rate of that burst, the same on both
//	charla-together-delivered-%
//	                          charla's deliveries after repair: must be 100
//	bare-together-delivered-% bare GossipSub's in the same run
//	charla-together-repaired  charla deliveries more than 2 s after the last send
//	bare-together-drops       bare's queue drops, as bare-burst-drops
//
// charla's Send returns once the message is durably stored; the 16 senders'
// sends share commits (node/groupcommit.go), so the disk does not set the
// pace. A charla burst that loses nothing in gossip shows charla-burst-drops
// 0 and nothing to repair; the delivered-% is the promise either way.
//
// Every node runs in this one process, so both runs are bound by CPU: the
// msgs/s figures, and so the ratio, follow the CPU the process gets while
// each run lasts, and move with anything else the machine runs. CPU per
// delivery is steadier: bare-cpu-us/delivery ÷ charla-cpu-us/delivery
// estimates the ratio when both runs get the same CPU.
//
// The b.Log lines of a run (shown with -v) add each node's drop and
// rejection counters, and the duplicates, send time and CPU of each run.
package bench
