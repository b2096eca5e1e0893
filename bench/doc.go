// Package bench holds charla's benchmarks of whole nodes: many real nodes in
// one process on 127.0.0.1, measured against bare go-libp2p-pubsub on the
// same topology.
//
// BenchmarkFanout is a fixed workload that takes a minute or so on two cores,
// not a loop to be scaled by b.N: run it once, without -short (which skips
// it) and without -race (which slows SQLite 20–35×):
//
//	go test -run='^$' -bench=Fanout -benchtime=1x ./bench
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
// Every node runs in this one process, so both runs are bound by CPU: the
// msgs/s figures, and so the ratio, follow the CPU the process gets while
// each run lasts, and move with anything else the machine runs. CPU per
// delivery is steadier: bare-cpu-us/delivery ÷ charla-cpu-us/delivery
// estimates the ratio when both runs get the same CPU.
//
// The b.Log lines of a run (shown with -v) add each node's drop and
// rejection counters, and the duplicates, send time and CPU of each run.
package bench
