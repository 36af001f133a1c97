# frozen_string_literal: true

require "erb"
require_relative "../support/flags"

# What the browser spec plants in the flags: markup in a flag name (with a
# space and a slash), in constraint values, in a variant name and payload.
module Planted
  extend FlagPayloads

  SCRIPT = "<script>alert(1)</script>"
  IMG = "\"><img src=x onerror=alert(2)>"
  # A flag name with markup, a space and a slash.
  HOSTILE = "#{SCRIPT} x/y".freeze
  HOSTS = "forkflag.test"

  FLAGS = payload(
    flag(HOSTILE, strategies: [rollout(100, group_id: "hostile",
                                            constraints: [constraint("plan", "IN", values: [SCRIPT, IMG])],
                                            variants: [{ name: IMG, weight: 1000, weightType: "variable",
                                                         stickiness: "default",
                                                         payload: { type: "string", value: SCRIPT } }])]),
    flag("beta-pricing", strategies: [
           rollout(100, group_id: "beta-pricing", constraints: [constraint("plan", "IN", values: ["enterprise"])])
             .merge(segments: [1]),
           { name: "userWithId", parameters: { userIds: "u-42,u-7" }, constraints: [] }
         ]),
    flag("new-checkout", strategies: [rollout(50, group_id: "new-checkout")],
                         dependencies: [{ feature: "beta-pricing" }]),
    flag("dark-mode", enabled: false),
    segments: [{ id: 1, constraints: [constraint("country", "IN", values: %w[se no])] }]
  )
end

# The status page (Forkflag::Web) in a real browser: Puma 5.6 in cluster
# mode (2 workers, preload_app!, plugin :forkflag) serving
# examples/config.ru, which mounts the page at /forkflag, with flags from a
# file that plants hostile names and values; headless Chromium driven by
# chromedriver loads every page as a person would, and saves screenshots
# under tmp/screenshots/.
RSpec.describe "Forkflag::Web in a real browser", :integration do
  include ServerChecks

  def self.state
    @state ||= {}
  end

  def state = self.class.state
  def server = state.fetch(:server)
  def browser = state.fetch(:browser)

  # An address on a host name of its own: Chromium keeps connections per
  # host, so each new name is a new connection (all map to 127.0.0.1).
  def url(path, host: "www")
    "http://#{host}.#{Planted::HOSTS}:#{server.port}/forkflag#{path}"
  end

  # The worker index Puma gave a process, from its title
  # ("puma: cluster worker 1: <master pid> [...]").
  def puma_worker_index(pid)
    title = File.read("/proc/#{pid}/cmdline").tr("\0", " ")
    title[/cluster worker (\d+):/, 1]&.to_i
  end

  def parent_pid(pid)
    File.read("/proc/#{pid}/status")[/^PPid:\s+(\d+)/, 1].to_i
  end

  # What the header says about the process that served the page.
  def shown_process
    header = browser.driver.find_element(id: "process")
    { pid: Integer(header.attribute("data-pid")), generation: Integer(header.attribute("data-generation")),
      text: header.text }
  end

  def expect_no_script_ran
    expect(browser.alert_text).to be_nil
    expect(browser.all("main script")).to be_empty
    expect(browser.all("img")).to be_empty
  end

  before(:all) do
    dir = Dir.mktmpdir("forkflag-web-")
    File.write(File.join(dir, "flags.json"), Planted::FLAGS)
    state[:dir] = dir
    env = ServerChecks::EXAMPLE_ENV_UNSET.merge(
      "FORKFLAG_FILE" => File.join(dir, "flags.json"), "FORKFLAG_APP_NAME" => "forkflag-web-browser",
      "FORKFLAG_REFRESH_INTERVAL" => 1, "FORKFLAG_METRICS_INTERVAL" => 3600, "FORKFLAG_BACKUP_PATH" => "false",
      "FORKFLAG_EXAMPLE_FLAGS" => "new-checkout,beta-pricing,#{Planted::HOSTILE}",
      "FORKFLAG_EXAMPLE_VARIANTS" => Planted::HOSTILE,
      "WORKERS" => 2, "SHUTDOWN_TIMEOUT" => 5
    )
    command = [Gem.ruby, ServerProcess.executable("puma"), "-C", "examples/puma.rb", "examples/config.ru"]
    state[:server] = ServerProcess.new(command, name: "puma-web", env: env).start
    state[:server].wait_until_serving
    state[:browser] = Browser.new(host_rules: "MAP *.#{Planted::HOSTS} 127.0.0.1").start
  end

  after(:all) do
    state[:browser]&.quit
    state[:server]&.stop(signal: "TERM", timeout: 15)
    state[:server]&.cleanup
    FileUtils.rm_rf(state[:dir]) if state[:dir]
  end

  after do |example|
    if example.exception && state[:server]
      warn("puma log:\n#{server.log[-4000..] || server.log}")
      begin
        warn("screenshot of the failure: #{browser.screenshot("failure-#{example.description.gsub(/\W+/, "-")}")}")
      rescue StandardError => e
        warn("no screenshot: #{e.class}")
      end
    end
  end

  it "shows each worker its own process: pid, parent, fork generation, Puma worker and its own counts" do
    # The example app's requests (new connections) evaluate flags in both
    # workers; each answers with its pid and what it evaluated.
    answers = until_pids(server, 2, timeout: 30).group_by(&:pid)
                                                .transform_values { |rs| rs.max_by { |r| r.body["requests"] } }
    # Each load on a new connection (a host name of its own) until both
    # workers answered; each worker's page is checked as it first appears.
    seen = []
    40.times do |i|
      break if seen.size >= 2

      browser.visit(url("/", host: "w#{i}"))
      pid = shown_process[:pid]
      next if seen.include?(pid)

      seen << pid
      expect_own_process(pid, answers.fetch(pid).body["evaluations"])
    end
    expect(seen.size).to eq(2), "the browser reached #{seen.size} worker(s) in 40 loads on new connections"
  end

  # The process page on screen names the worker that served it, and shows
  # its own counts: what the example app says that worker evaluated.
  def expect_own_process(pid, evaluated)
    index = puma_worker_index(pid)
    expect_named(pid, index)
    expect(browser.text("#state")).to include("ready yes", "background thread alive yes", "failures in a row 0")
    expect(browser.text("#source")).to include("file #{state[:dir]}/flags.json")
    rows = counts_shown
    [Planted::HOSTILE, "new-checkout"].each do |name|
      expect(rows.fetch(name)).to eq([evaluated[name]["yes"], evaluated[name]["no"]]), "#{name} in worker #{index}"
    end
    expect_no_script_ran
    browser.screenshot("process-worker-#{index}")
  end

  # The counts table on screen: name => [yes, no].
  def counts_shown
    browser.all("#counts tbody tr").to_h do |row|
      cells = row.find_elements(css: "td").map(&:text)
      [cells[0], [Integer(cells[1]), Integer(cells[2])]]
    end
  end

  # The header and the identity table name the process: pid, parent (the
  # Puma master), fork generation 1 (forked once, from the preloading
  # master), Puma's worker index (as the process title says).
  def expect_named(pid, index)
    master = server.pid
    expect(parent_pid(pid)).to eq(master)
    shown = shown_process
    expect(shown[:generation]).to eq(1)
    expect(shown[:text]).to include("Puma worker #{index}", "pid #{pid}", "generation 1", "parent #{master}")
    expect(browser.text("#identity")).to include("pid #{pid}", "parent pid #{master}", "fork generation 1",
                                                 "Puma worker #{index}", "Puma 5.")
  end

  it "lists the flags with the planted markup as text, follows a link to a flag, and searches" do
    browser.visit(url("/flags"))
    expect(browser.text("h1")).to eq("Flags")
    expect(browser.text("#summary")).to eq("4 flags loaded in this process.")
    names = browser.all("#flags a.flag").map(&:text)
    expect(names).to eq(["#{Planted::SCRIPT} x/y", "beta-pricing", "dark-mode", "new-checkout"].sort)
    expect(browser.text("#flags")).to include(Planted::SCRIPT, Planted::IMG)
    expect_no_script_ran
    browser.screenshot("flags")

    # The link to the hostile flag leads to its page, the name escaped in the path.
    link = browser.all("#flags a.flag").find { |a| a.text == Planted::HOSTILE }
    expect(link.attribute("href")).to end_with("/forkflag/flags/#{ERB::Util.url_encode(Planted::HOSTILE)}")
    browser.follow(link)
    expect(browser.text("#flag-name")).to eq(Planted::HOSTILE)
    strategy = browser.text("#strategy-0")
    expect(strategy).to include("plan", "IN", Planted::SCRIPT, Planted::IMG)
    expect(browser.text("#strategy-0 table.variants")).to include(Planted::IMG, Planted::SCRIPT, "1000 (100.0%)")
    expect_no_script_ran
    browser.screenshot("flag-hostile")

    # A dependency links to the flag it names.
    browser.visit(url("/flags/new-checkout"))
    browser.follow(browser.driver.find_element(css: "#dependencies a.flag"))
    expect(browser.text("#flag-name")).to eq("beta-pricing")
    expect(browser.text("#strategy-0")).to include("Segment 1", "country").and match(/\b(se, no|no, se)\b/)
    browser.screenshot("flag-beta-pricing")

    # The search box, as a person uses it.
    browser.visit(url("/flags"))
    box = browser.driver.find_element(id: "q")
    box.send_keys("CHECK")
    browser.follow(box, submit: true)
    expect(browser.driver.current_url).to include("q=CHECK")
    expect(browser.all("#flags a.flag").map(&:text)).to eq(["new-checkout"])
    expect(browser.text("#summary")).to eq("1 of 4 flags have a name containing “CHECK”.")
    browser.screenshot("flags-search")

    browser.visit(url("/flags/no-such-flag"))
    expect(browser.text("#message")).to eq("No flag named no-such-flag is loaded in this process.")
  end

  it "explains an answer from the form: the reason, the matched strategy, each constraint's value read" do
    browser.visit(url("/explain"))
    form = { "flag" => "beta-pricing", "user_id" => "u-42", "session_id" => "s-1", "remote_address" => "10.1.2.3" }
    form.each { |id, value| browser.driver.find_element(id: id).send_keys(value) }
    browser.driver.find_element(id: "properties").send_keys("plan=free\ncountry=se")
    browser.follow(browser.driver.find_element(id: "explain"))

    expect(browser.text("#reason")).to eq("strategy_matched")
    expect(browser.text("#matched-strategy")).to start_with("strategy 2: userWithId")
    expect(browser.text("#answer")).to include("enabled on")
    first = browser.text("#explain-strategy-0")
    expect(first).to include("did not match", "plan", "enterprise", "free")
    expect(browser.text("#explain-strategy-1")).to include("matched", "u-42")
    expect(browser.text("#explanation-text")).not_to be_empty
    # The form keeps what was sent.
    expect(browser.driver.find_element(id: "user_id").attribute("value")).to eq("u-42")
    browser.screenshot("explain-matched")

    # The hostile flag, explained with a hostile property value.
    query = URI.encode_www_form("flag" => Planted::HOSTILE, "properties" => "plan=#{Planted::IMG}")
    browser.visit(url("/explain?#{query}"))
    expect(browser.text("#reason")).to eq("strategy_matched")
    expect(browser.text("#explain-strategy-0")).to include(Planted::IMG)
    expect(browser.driver.find_element(id: "flag").attribute("value")).to eq(Planted::HOSTILE)
    expect_no_script_ran
    browser.screenshot("explain-hostile")

    # A malformed properties line: a clear message, and the form again.
    browser.visit(url("/explain"))
    browser.driver.find_element(id: "flag").send_keys("beta-pricing")
    browser.driver.find_element(id: "properties").send_keys("plan=pro\nno equals sign here")
    browser.follow(browser.driver.find_element(id: "explain"))
    expect(browser.text("#problems")).to include('properties line 2: expected key=value, got "no equals sign here"')
    expect(browser.all("#reason")).to be_empty
    browser.screenshot("explain-malformed")
  end
end
