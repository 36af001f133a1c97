# frozen_string_literal: true

require "fileutils"
require "tmpdir"
require_relative "../../support/loopback"

# A real, headless Chromium driven through chromedriver (Debian's
# chromium, chromium-driver and ruby-selenium-webdriver, installed by
# bin/setup). Missing pieces fail the spec, never skip it.
#
# Every browser process is killed by #quit (call it in an ensure or
# after hook): the driver's quit, then any process left with this
# browser's own user-data-dir or driver port, by pid.
class Browser
  CHROMIUM = "/usr/bin/chromium"
  CHROMEDRIVER = "/usr/bin/chromedriver"
  SCREENSHOTS = File.expand_path("../../tmp/screenshots", __dir__)

  class Error < StandardError; end

  attr_reader :driver

  # @param host_rules [String, nil] Chromium's --host-resolver-rules (e.g.
  #   "MAP *.forkflag.test 127.0.0.1": each host name gets its own
  #   connections, all to the loopback server)
  def initialize(host_rules: nil)
    [CHROMIUM, CHROMEDRIVER].each do |path|
      next if File.executable?(path)

      raise Error, "#{path} is missing: the browser test needs Debian's chromium and chromium-driver (run bin/setup)"
    end
    require "selenium-webdriver"
    @profile = Dir.mktmpdir("forkflag-chromium-")
    @port = self.class.driver_port
    @host_rules = host_rules
  end

  # chromedriver's port: a free one whose neighbour below is free too.
  # Selenium takes that neighbour as a lock while it starts the driver; a
  # port picked alone may sit next to one in use (a server's, or a client
  # connection's local port), and the lock then waits 45 s and fails.
  def self.driver_port
    100.times do
      port = Loopback.free_port
      return port if port > 1025 && bindable?(port - 1)
    end
    raise Error, "found no free pair of loopback ports for chromedriver"
  end

  def self.bindable?(port)
    TCPServer.new("127.0.0.1", port).close
    true
  rescue SystemCallError
    false
  end

  # Starts chromedriver and the browser (bounded by the HTTP timeouts).
  def start
    service = Selenium::WebDriver::Chrome::Service.new(path: CHROMEDRIVER, port: @port)
    http = Selenium::WebDriver::Remote::Http::Default.new(open_timeout: 10, read_timeout: 30)
    @driver = Selenium::WebDriver.for(:chrome, options: options, service: service, http_client: http)
    @driver.manage.timeouts.page_load = 20
    @driver.manage.timeouts.script_timeout = 5
    @driver.manage.timeouts.implicit_wait = 0
    @driver.manage.window.resize_to(1280, 1400)
    self
  end

  def visit(url)
    @driver.navigate.to(url)
  end

  def text(css = "body")
    @driver.find_element(css: css).text
  end

  def all(css)
    @driver.find_elements(css: css)
  end

  # Clicks (or submits) an element that loads a new page and waits, at
  # most 10 s, until the old page is gone and the new one is loaded.
  def follow(element, submit: false)
    old = @driver.find_element(css: "html")
    submit ? element.submit : element.click
    Selenium::WebDriver::Wait.new(timeout: 10, interval: 0.05).until do
      stale?(old) && @driver.execute_script("return document.readyState") == "complete"
    end
  end

  # The open alert's text, or nil (a script that ran would have opened one).
  def alert_text
    @driver.switch_to.alert.text
  rescue Selenium::WebDriver::Error::NoSuchAlertError
    nil
  end

  def screenshot(name)
    FileUtils.mkdir_p(SCREENSHOTS)
    path = File.join(SCREENSHOTS, "#{name}.png")
    @driver.save_screenshot(path)
    path
  end

  # Ends the browser and its driver whatever state they are in.
  def quit
    begin
      @driver&.quit
    rescue StandardError => e
      warn("browser: quit raised #{e.class}: #{e.message}; killing its processes")
    end
    kill_leftovers
    FileUtils.rm_rf(@profile)
  end

  private

  def stale?(element)
    element.tag_name
    false
  rescue Selenium::WebDriver::Error::StaleElementReferenceError
    true
  end

  def options
    args = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
            "--disable-extensions", "--user-data-dir=#{@profile}", "--window-size=1280,1400"]
    args << "--host-resolver-rules=#{@host_rules}" if @host_rules
    Selenium::WebDriver::Chrome::Options.new(binary: CHROMIUM, args: args)
  end

  # KILLs the processes this browser started that are still alive: those
  # whose command line names its profile directory or its driver's port.
  def kill_leftovers
    marks = ["--user-data-dir=#{@profile}", "--port=#{@port}"]
    Dir.glob("/proc/[0-9]*/cmdline").each do |file|
      cmdline = File.read(file).split("\0")
      next unless cmdline.any? { |arg| marks.include?(arg) }

      Process.kill("KILL", Integer(File.basename(File.dirname(file))))
    rescue Errno::ENOENT, Errno::ESRCH, Errno::EACCES, Errno::EPERM
      nil
    end
  end
end
