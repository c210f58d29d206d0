// The "mongo-atomic" test server: mongo-java-server (de.bwaldvogel) on the MongoDB wire
// protocol, started by infra/servers.sh. Unlike FerretDB 1.x it applies every single-document
// write atomically (one lock per collection), across processes and connections, which the
// replica and concurrency tests need (see docs/architecture.md, "Storage").
//
//   java -cp '<libs>/*:<classes>' Launcher --port 27018 [--host 127.0.0.1] [--h2 FILE | --memory]
//
// Three things differ from the stock server:
//  - it reports MongoDB 5.0 (wire version 13): the stock versions stop at wire 8, which
//    pymongo 4.x refuses;
//  - a write command's reply is copied before the next write on that collection may run:
//    the stock findAndModify answers with the stored document object itself, which netty
//    serializes after the command returned, so another writer's `$inc` could show up in
//    it (measured: 4 processes x 100 `$inc` with `new: true`, callers saw ~40 duplicate
//    values). MongoDB returns the document as this very update left it; so does this
//    launcher (write commands on one collection run one at a time, reply copy included);
//  - with the H2 backend every write command is committed to the file before it is
//    acknowledged, so a SIGKILL of the server loses no acknowledged write (the H2 store
//    otherwise commits on a timer, about once a second). The fault tests rely on that.
// The memory backend (--memory) keeps nothing across a restart.

import de.bwaldvogel.mongo.MongoBackend;
import de.bwaldvogel.mongo.MongoServer;
import de.bwaldvogel.mongo.MongoVersion;
import de.bwaldvogel.mongo.backend.h2.H2Backend;
import de.bwaldvogel.mongo.backend.memory.MemoryBackend;
import de.bwaldvogel.mongo.bson.Document;
import io.netty.channel.Channel;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;

public final class Launcher {

    /** MongoDB 5.0: the oldest version pymongo 4.x speaks to that the server can pass for. */
    enum Wire13 implements MongoVersion {
        MONGO_5_0;

        @Override
        public List<Integer> getVersionArray() {
            return List.of(5, 0, 0);
        }

        @Override
        public int getWireVersion() {
            return 13;
        }
    }

    private static final Set<String> WRITES = Set.of(
            "insert", "update", "delete", "findandmodify", "createindexes", "dropindexes",
            "drop", "dropdatabase", "create", "renamecollection");

    /** Serializes write commands per collection; commits the H2 file after each one. */
    static final class WriteGate {
        private final ConcurrentHashMap<String, Object> locks = new ConcurrentHashMap<>();

        Document run(String database, String command, Document query, java.util.function.Supplier<Document> call,
                     Runnable afterWrite) {
            if (!WRITES.contains(command.toLowerCase())) {
                return call.get();
            }
            Object target = query.get(command);
            String key = database + "." + (target instanceof String name ? name : "");
            synchronized (locks.computeIfAbsent(key, k -> new Object())) {
                Document reply = call.get().cloneDeeply();
                afterWrite.run();
                return reply;
            }
        }
    }

    static final class DurableH2Backend extends H2Backend {
        private final WriteGate gate = new WriteGate();

        DurableH2Backend(String file) {
            super(file);
        }

        @Override
        public Document handleCommand(Channel channel, String database, String command, Document query) {
            return gate.run(database, command, query,
                    () -> super.handleCommand(channel, database, command, query), this::commit);
        }
    }

    static final class GatedMemoryBackend extends MemoryBackend {
        private final WriteGate gate = new WriteGate();

        @Override
        public Document handleCommand(Channel channel, String database, String command, Document query) {
            return gate.run(database, command, query,
                    () -> super.handleCommand(channel, database, command, query), () -> { });
        }
    }

    public static void main(String[] args) throws InterruptedException {
        String host = "127.0.0.1";
        int port = 27018;
        String h2File = null;
        boolean memory = false;
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--host" -> host = args[++i];
                case "--port" -> port = Integer.parseInt(args[++i]);
                case "--h2" -> h2File = args[++i];
                case "--memory" -> memory = true;
                default -> {
                    System.err.println("unknown argument " + args[i]
                            + " (use --host H --port P [--h2 FILE | --memory])");
                    System.exit(2);
                }
            }
        }
        if (memory == (h2File != null)) {
            System.err.println("give exactly one of --h2 FILE or --memory");
            System.exit(2);
        }
        MongoBackend backend = memory ? new GatedMemoryBackend() : new DurableH2Backend(h2File);
        backend.version(Wire13.MONGO_5_0);
        MongoServer server = new MongoServer(backend);
        server.bind(host, port);
        System.out.println("mongo-atomic: listening on " + host + ":" + port + " ("
                + (memory ? "memory backend" : "H2 backend, file " + h2File) + ", wire version 13)");
        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            System.out.println("mongo-atomic: shutting down");
            server.shutdown();
            stopped.countDown();
        }));
        stopped.await();
    }
}
