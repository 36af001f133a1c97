# frozen_string_literal: true

# Benchmark 3: what a live client adds to fork + first evaluation in the child.
#
# Five worker processes run side by side, forked from this one after the
# gem is loaded: two hold a live client (a real background thread watching
# a flags file, 1,000 flags, ready, evaluated once), the others hold no
# client. In each round this process asks each, in rotating order, to fork
# once; the forked child answers its first question and reports the
# monotonic time of its answer:
#
# - with the client: `enabled?("flag-00000", ctx)`, and `stats[:refreshes]`
#   at that moment: refreshes the child's own thread made before the
#   answer, i.e. round trips to the source before the first answer;
# - without: a constant;
# - two references for the system's part, with no client: "native thread"
#   holds an idle native thread, like the client's between refreshes;
#   "client's threads" also holds a Ruby thread waiting with the GVL
#   released, like the client's log thread (the client's creator runs one).
#   Their children start a native thread the way a client starts its
#   background thread (`Forkflag._bench_spawn_thread`), then answer a
#   constant. A process with threads forks more slowly (the C library and
#   Ruby have more to do in the child of a multi-threaded process), and a
#   forked child's first answer starts the child's own thread (the child
#   refreshes at once), so these are the parts of "added" that the threads
#   cost on this machine, whoever owns them. Like a client's process, the
#   references have started a thread on an ended thread's stack before they
#   fork (see `bind_thread_start` in ext/forkflag_core/src/process/fork.rs);
# - "bare start": a second process with a live client, made the same way,
#   whose children start a native thread as the references' do instead of
#   evaluating. "with" minus "bare start" is what forkflag's own code adds
#   to a forked child's first answer beyond the thread start it needs: the
#   same process state, the same inherited client and threads.
# - "http" and "https" (unless HTTPS=0): a live client of the real Unleash
#   server through nginx (bench/server.rb), over plain HTTP and over TLS
#   with a CA made in the run, each made like "with" and answering the same
#   question. After its answer, such a child waits for its own thread's
#   first refresh (a conditional GET on a connection of its own: for
#   https, the TLS handshake) and reports the CPU time the whole child used
#   by then (CLOCK_PROCESS_CPUTIME_ID, all its threads) and its private
#   memory (Private_Clean + Private_Dirty). "https" against "http" is what
#   TLS adds to a forked worker.
#
# Latency = child's answer time - parent's time just before fork (the clock
# is system-wide). The figures are medians and p99 over FORKS rounds of each;
# "added" is the difference between the worker with a client and the one
# without, measured in the same rounds.
#
# Beside the times, the minor page faults each child's answering thread took
# by its answer (from /proc/thread-self/stat): on a virtual machine a fault costs
# microseconds, and unlike the times the count hardly moves with the load of
# the machine, so it shows what a change to the child's path saves.
#
# Goals: under 50 us added, and zero round trips before the child's first
# answer; https adds at most 10% to the figure over http.
#
#   ruby bench/fork.rb           (or: rake bench:fork)
#   FORKS=500 FLAGS=1000 ruby bench/fork.rb
#   HTTPS=0 ruby bench/fork.rb   (no server: without the http and https workers)
require_relative "support"
require_relative "server"
require "tmpdir"

FORKS = Bench.env_number("FORKS", 500).to_i
FLAGS = Bench.env_number("FLAGS", 1000).to_i
WARMUP = 20
DEADLINE = 10 # seconds for any one step
SERVER_KINDS = Bench.server_variants? ? %i[http https] : []

def now_ns
  Process.clock_gettime(Process::CLOCK_MONOTONIC, :nanosecond)
end

# The child's first answer, per worker kind.
def first_answer(kind, client, ctx)
  case kind
  when :with, :http, :https then client.enabled?("flag-00000", ctx)
  when :native, :threads, :bare then Forkflag.__send__(:_bench_spawn_thread, 0) && false
  else false
  end
end

# Reads one line from `io` within DEADLINE seconds.
def read_line(io, what)
  raise "no answer from #{what} within #{DEADLINE} s" unless io.wait_readable(DEADLINE)

  line = io.gets
  raise "#{what} closed its pipe" if line.nil?

  line
end

# A worker: forks a child on each "fork" command and reports its times,
# faults and refreshes before the answer, and for a server's client the
# child's CPU (us) and private memory (KiB) by its thread's first refresh.
def worker(commands, results, kind, client)
  ctx = { userId: "user-1", properties: { plan: "plan-1", version: "1.2.0" } }
  while (command = commands.gets)
    break unless command.start_with?("fork")

    reader, writer = IO.pipe
    started = now_ns
    pid = fork do
      in_child = now_ns
      answer = first_answer(kind, client, ctx)
      answered = now_ns
      answered_ms = Process.clock_gettime(Process::CLOCK_REALTIME, :millisecond)
      # Minor page faults of this thread (the one that forked and answers)
      # since the fork; not those of threads the child started, which run
      # beside it.
      faults = File.read("/proc/thread-self/stat").split(") ", 2).last.split[7]
      before = 0
      if client
        # Refreshes by this child's own thread that had completed when it
        # answered (stats are read just after; last_refresh_ms, stored after
        # the count, tells which ended in an earlier millisecond).
        stats = client.__send__(:_stats)
        refreshed_at = stats[:last_refresh_ms]
        before = stats[:refreshes].positive? && refreshed_at.positive? && refreshed_at < answered_ms ? 1 : 0
      end
      cpu_us = private_kb = 0
      if SERVER_KINDS.include?(kind)
        # The inherited flags are current, so ready? is already true: wait
        # for this child's own thread to count its first refresh. Looks
        # seldom: each look allocates (the stats Hash), writing heap pages.
        deadline = now_ns + (DEADLINE * 1_000_000_000)
        sleep 0.02 until client.__send__(:_stats)[:refreshes].positive? || now_ns > deadline
        exit!(1) unless client.__send__(:_stats)[:refreshes].positive?
        cpu_us = Process.clock_gettime(Process::CLOCK_PROCESS_CPUTIME_ID, :microsecond)
        private_kb = Bench.private_kb
      end
      writer.write("#{in_child} #{answered} #{before} #{faults} #{cpu_us} #{private_kb} #{answer}\n")
      writer.close
      exit!(0)
    end
    forked = now_ns
    writer.close
    in_child, answered, refreshes, faults, cpu_us, private_kb =
      read_line(reader, "the forked child").split.first(6).map { |v| Integer(v) }
    reader.close
    Process.wait(pid)
    times = [answered - started, forked - started, in_child - started, answered - in_child]
    results.write("#{times.join(" ")} #{faults} #{refreshes} #{cpu_us} #{private_kb}\n")
  end
end

def start_worker(kind, flags_path, server)
  commands_r, commands_w = IO.pipe
  results_r, results_w = IO.pipe
  pid = fork do
    commands_w.close
    results_r.close
    client = nil
    case kind
    when :with, :bare, :http, :https
      client = if SERVER_KINDS.include?(kind)
                 server.client(kind)
               else
                 Forkflag::Client.new(file: flags_path, backup_path: false, disable_metrics: true)
               end
      # Starts the background thread. With the arguments the children pass:
      # Ruby caches a method's lookup per call shape, and a shape a process
      # never used costs its first caller a lookup and an allocation (in a
      # forked child, copy-on-write faults), whoever's method it is.
      client.enabled?("flag-00000", { userId: "user-0" })
      abort "the client is not ready" unless client.wait_until_ready(DEADLINE)
      abort "the client has no live thread" unless client.stats[:thread_alive]
    when :native, :threads
      # A thread started on an ended thread's stack, as a client does once.
      2.times do
        abort "no thread" unless Forkflag.__send__(:_bench_spawn_thread, 0)
        sleep 0.02
      end
      # An idle background thread, as the client's is between refreshes.
      abort "no thread" unless Forkflag.__send__(:_bench_spawn_thread, 3600)
      # A Ruby thread waiting with the GVL released, as the log thread does.
      Thread.new { Queue.new.pop } if kind == :threads
    end
    results_w.write("ready\n")
    worker(commands_r, results_w, kind, client)
    client&.close(timeout: 1)
    exit!(0)
  end
  commands_r.close
  results_w.close
  [pid, commands_w, results_r]
end

def summary(values)
  [Bench.median(values), Bench.percentile(values, 0.99)]
end

Dir.mktmpdir("forkflag-bench-fork") do |dir|
  flags_path = File.join(dir, "flags.json")
  File.write(flags_path, Bench.payload(Bench.mixed_features(FLAGS)))
  server = Bench.server(Bench.request_names) unless SERVER_KINDS.empty?
  kinds = %i[with without native threads bare] + SERVER_KINDS
  workers = kinds.to_h { |kind| [kind, start_worker(kind, flags_path, server)] }
  begin
    workers.each { |name, (_, _, results)| read_line(results, "worker #{name}") }
    fields = %i[total parent_fork child_start first_answer]
    samples = kinds.to_h { |kind| [kind, Hash.new { |h, k| h[k] = [] }] }
    refreshes = []
    faults = kinds.to_h { |kind| [kind, []] }
    child_cpu = kinds.to_h { |kind| [kind, []] }
    child_private = kinds.to_h { |kind| [kind, []] }
    puts "bench/fork.rb: #{FORKS} forks per worker (+#{WARMUP} warm-up), #{FLAGS} flags, rotating order"
    puts Bench.machine
    puts "http and https workers: #{server.describe}" if server
    (WARMUP + FORKS).times do |round|
      order = kinds.rotate(round % kinds.size)
      order.each do |name|
        _, commands, results = workers[name]
        commands.write("fork\n")
        *times, child_faults, child_refreshes, cpu_us, private_kb =
          read_line(results, "worker #{name}").split.map { |v| Integer(v) }
        next if round < WARMUP

        fields.zip(times).each { |field, ns| samples[name][field] << (ns / 1000.0) }
        faults[name] << child_faults
        child_cpu[name] << (cpu_us / 1000.0)
        child_private[name] << private_kb
        refreshes << child_refreshes if name == :with
      end
    end
    labels = {
      total: "fork + first answer (the figure)", parent_fork: "  fork() returns in the parent",
      child_start: "  child runs its first Ruby line", first_answer: "  first answer, from that line"
    }
    rows = fields.map do |field|
      w_med, w_p99 = summary(samples[:with][field])
      o_med, o_p99 = summary(samples[:without][field])
      n_med, = summary(samples[:native][field])
      t_med, = summary(samples[:threads][field])
      b_med, = summary(samples[:bare][field])
      [labels[field], format("%.1f", w_med), format("%.1f", o_med), format("%.1f", w_med - o_med),
       format("%.2fx", w_med / o_med), format("%.1f", w_p99), format("%.1f", o_p99), format("%.1f", w_p99 - o_p99),
       format("%.1f", n_med - o_med), format("%.1f", t_med - o_med), format("%.1f", w_med - b_med)]
    end
    puts
    puts "microseconds after the parent calls fork; medians and p99 over #{FORKS} forks each; \"native thread\" and " \
         "\"client's threads\": what those references add (median); \"beyond a bare start\": with - bare start (median)"
    Bench.table(["", "with", "without", "added", "ratio", "p99 with", "p99 without", "p99 added", "native thread",
                 "client's threads", "beyond a bare start"], rows)
    added = ->(kind) { Bench.median(samples[kind][:total]) - Bench.median(samples[:without][:total]) }
    added_med = added.call(:with)
    puts
    puts "the system's part of \"added\" (what threads cost a fork and a forked child's first answer, with no " \
         "client): a native thread #{format("%.1f", added.call(:native))} us; a native and a Ruby thread, as a " \
         "client's #{format("%.1f", added.call(:threads))} us; added beyond them: " \
         "#{format("%.1f", added_med - added.call(:threads))} us"
    beyond_bare = Bench.median(samples[:with][:total]) - Bench.median(samples[:bare][:total])
    puts "forkflag's own part (a client's child evaluating, against one starting a bare thread, same process state): " \
         "#{format("%.1f", beyond_bare)} us"
    puts "page faults of the child's answering thread by its answer (median; about 2 us each here): " \
         "#{kinds.map { |kind| "#{kind} #{Bench.median(faults[kind]).round}" }.join(", ")}; " \
         "the client adds #{(Bench.median(faults[:with]) - Bench.median(faults[:without])).round}, " \
         "#{(Bench.median(faults[:with]) - Bench.median(faults[:threads])).round} beyond the client's threads, " \
         "#{(Bench.median(faults[:with]) - Bench.median(faults[:bare])).round} beyond a bare start"
    puts "round trips completed before the child's first answer (its thread's refreshes): " \
         "max #{refreshes.max} over #{refreshes.size} children"
    puts "goal: under 50 us added (median): #{Bench.verdict(added_med < 50)} (#{format("%.1f", added_med)} us); " \
         "zero round trips before the first answer: #{Bench.verdict(refreshes.max.zero?)}"
    unless SERVER_KINDS.empty?
      total = ->(kind) { Bench.median(samples[kind][:total]) }
      server_rows = SERVER_KINDS.map do |kind|
        [kind.to_s, format("%.1f", total.call(kind)), format("%.1f", total.call(kind) - total.call(:without)),
         format("%.1f", Bench.percentile(samples[kind][:total], 0.99)),
         format("%.1f", Bench.median(samples[kind][:parent_fork])),
         format("%.1f", Bench.median(samples[kind][:child_start])),
         format("%.1f", Bench.median(samples[kind][:first_answer])), Bench.median(faults[kind]).round,
         format("%.2f", Bench.median(child_cpu[kind])), Bench.median(child_private[kind]).round]
      end
      ratio = total.call(:https) / total.call(:http)
      cpu = SERVER_KINDS.map { |kind| Bench.median(child_cpu[kind]) }
      memory = SERVER_KINDS.map { |kind| Bench.median(child_private[kind]) }
      server_rows << ["https / http", format("%.2fx", ratio), "", "", "", "", "", "", format("%.2fx", cpu[1] / cpu[0]),
                      format("%+d", memory[1] - memory[0])]
      puts
      puts "a client of the server, over http and over https (medians over #{FORKS} forks each; microseconds after " \
           "fork, as above; the child's CPU and private memory by its thread's first refresh)"
      Bench.table(["", "fork + first answer", "added", "p99", "fork() returns", "first Ruby line", "first answer",
                   "faults", "child CPU ms",
                   "child private KiB"], server_rows)
      puts "goal: https adds at most 10% to the fork figure over http: #{Bench.verdict(ratio <= 1.10)} " \
           "(#{format("%+.1f", 100 * (ratio - 1))}%; the child's CPU by its first refresh " \
           "#{format("%+.2f", cpu[1] - cpu[0])} ms, its private memory #{format("%+d", memory[1] - memory[0])} KiB)"
    end
  ensure
    workers.each_value do |pid, commands, results|
      commands.close unless commands.closed?
      results.close unless results.closed?
      deadline = Time.now + DEADLINE
      sleep 0.05 while Process.waitpid(pid, Process::WNOHANG).nil? && Time.now < deadline
      begin
        Process.kill(:KILL, pid)
        Process.wait(pid)
      rescue Errno::ESRCH, Errno::ECHILD
        nil
      end
    end
  end
end
